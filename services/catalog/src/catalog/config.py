"""Settings of the catalog service (``TANDEM_CATALOG_*``), and the ``Settings`` dependency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from tandem.app import service_settings
from tandem.settings import ServiceSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class CatalogSettings(ServiceSettings):
    """The catalog service's own settings; ``database_url`` comes from the base."""

    service: ClassVar[str] = "catalog"
    model_config = SettingsConfigDict(env_prefix="TANDEM_CATALOG_", extra="ignore")

    #: The most descriptor documents one import may hold.
    max_import_documents: int = Field(default=1000, ge=1, le=10000)


#: The running service's settings, as a route dependency.
Settings = Annotated[CatalogSettings, Depends(service_settings)]
