"""Settings of the changes service (``TANDEM_CHANGES_*``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.settings import PlatformSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

Risk = Literal["low", "moderate", "high", "very_high"]


class RiskRule(BaseModel):
    """One ordered risk rule: every condition it names must hold; the first match sets risk."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    risk: Risk
    environments: list[str] | None = None
    types: list[Literal["standard", "normal", "emergency"]] | None = None
    #: The planned window is at least this long.
    min_window_hours: float | None = None
    #: The service's change success score is at most this.
    max_success_score: int | None = None
    #: The service has at least this many open incidents in the change's environment.
    min_open_incidents: int | None = None
    #: ... of which at least this many are major (P1/P2 or declared).
    min_open_major_incidents: int | None = None


DEFAULT_RISK_RULES = [
    RiskRule(name="production change while the service has an open major incident",
             risk="very_high", environments=["production"], min_open_major_incidents=1),
    RiskRule(name="production change of a service with a poor change success score",
             risk="high", environments=["production"], max_success_score=-10),
    RiskRule(name="emergency change", risk="high", types=["emergency"]),
    RiskRule(name="production window of 4 hours or more", risk="moderate",
             environments=["production"], min_window_hours=4),
    RiskRule(name="normal change in production", risk="moderate", environments=["production"],
             types=["normal"]),
    RiskRule(name="the service has open incidents", risk="moderate", min_open_incidents=1),
]


class ChangesSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TANDEM_CHANGES_", extra="ignore")

    database_url: str | None = None
    #: Approvals a normal change needs before authorize -> scheduled.
    required_approvals: int = Field(default=1, ge=1)
    #: Approvals an emergency change needs (its expedited authority).
    emergency_required_approvals: int = Field(default=1, ge=1)
    #: The longest planned window a change may ask for.
    max_window_hours: float = Field(default=72, gt=0)
    #: Ordered risk rules as JSON; the first whose conditions all hold sets the risk.
    risk_rules: list[RiskRule] = Field(default_factory=lambda: list(DEFAULT_RISK_RULES))
    default_risk: Risk = "low"
    #: How often freezes are moved from scheduled to active to ended at their times.
    freeze_clock_interval_s: float = Field(default=5.0, gt=0)

    def resolved_database_url(self, platform: PlatformSettings | None = None) -> str:
        return self.database_url or (platform or PlatformSettings()).default_database_url("changes")
