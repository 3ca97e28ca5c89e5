"""Settings of the incidents service (``TANDEM_INCIDENTS_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from tandem.settings import PlatformSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class IncidentsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_INCIDENTS_", extra="ignore")

    database_url: str | None = None

    def resolved_database_url(self, platform: PlatformSettings | None = None) -> str:
        return self.database_url or (platform or PlatformSettings()).default_database_url("incidents")
