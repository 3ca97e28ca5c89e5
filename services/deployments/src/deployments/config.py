"""Settings of the deployments service (``TANDEM_DEPLOYMENTS_*``, and ``TANDEM_GATE_MODE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from deployments.rules.gate import GateMode
from tandem.app import service_settings
from tandem.dora import BucketTable
from tandem.settings import ServiceSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class DeploymentsSettings(ServiceSettings):
    """The deployments service's own settings (its database among them)."""

    service: ClassVar[str] = "deployments"
    model_config = SettingsConfigDict(env_prefix="TANDEM_DEPLOYMENTS_", extra="ignore",
                                      populate_by_name=True)

    #: The contract names this one ``TANDEM_GATE_MODE`` (no service prefix).
    gate_mode: GateMode = Field(
        default=GateMode.receipt,
        validation_alias=AliasChoices("TANDEM_GATE_MODE", "gate_mode"),
    )
    #: DORA buckets as JSON (``TANDEM_DEPLOYMENTS_DORA_BUCKETS``); defaults to DORA 2023.
    dora_buckets: BucketTable = Field(default_factory=BucketTable)
    #: Length of the planned window of a change the gate asks for.
    change_window_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    #: Longest ``?wait=`` a gate read may hold.
    max_gate_wait_s: float = Field(default=60.0, gt=0, le=300)
    #: While a gate read waits: re-read that often in case another replica decided it.
    gate_recheck_s: float = Field(default=5.0, gt=0, le=60)


#: The running service's settings, as a route dependency.
Settings = Annotated[DeploymentsSettings, Depends(service_settings)]
