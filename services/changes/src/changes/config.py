"""Settings of the changes service (``TANDEM_CHANGES_*``), and the ``Settings`` dependency."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from changes.rules.risk import DEFAULT_RISK_RULES, Risk, RiskRule
from tandem.app import service_settings
from tandem.settings import ServiceSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class ChangesSettings(ServiceSettings):
    """The changes service's own settings; ``database_url`` comes from the base."""

    service: ClassVar[str] = "changes"
    model_config = SettingsConfigDict(env_prefix="TANDEM_CHANGES_", extra="ignore")

    #: Approvals a normal change needs before authorize -> scheduled.
    required_approvals: int = Field(default=1, ge=1)
    #: Approvals an emergency change needs (its expedited authority).
    emergency_required_approvals: int = Field(default=1, ge=1)
    #: A change of a service of this tier or a more critical one (1 = most critical) needs a
    #: manager of the service's owner team and one of its operations team (the catalog's);
    #: 0 turns approvals by ownership off.
    dual_approval_tier: int = Field(default=1, ge=0, le=4)
    #: The longest planned window a change may ask for.
    max_window_hours: float = Field(default=72, gt=0)
    #: Ordered risk rules as JSON; the first whose conditions all hold sets the risk.
    risk_rules: list[RiskRule] = Field(default_factory=lambda: list(DEFAULT_RISK_RULES))
    default_risk: Risk = "low"
    #: How often freezes are moved from scheduled to active to ended at their times.
    freeze_clock_interval_s: float = Field(default=5.0, gt=0)


#: The running service's settings, as a route dependency.
Settings = Annotated[ChangesSettings, Depends(service_settings)]
