"""Settings of the incidents service (``TANDEM_INCIDENTS_*``)."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path
from typing import Annotated, ClassVar

from fastapi import Depends
from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from tandem.app import service_settings
from tandem.auth import parse_ttl
from tandem.settings import ServiceSettings, parse_routing_keys

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

#: ServiceNow's default impact x urgency matrix (rows: impact 1..3, columns: urgency 1..3).
DEFAULT_PRIORITY_MATRIX = [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
#: Response / resolution targets per priority; P5 has none.
DEFAULT_SLA_TARGETS = "1=15m/4h,2=30m/8h,3=4h/3d,4=1d/5d"


class IncidentsSettings(ServiceSettings):
    """The incidents service's own settings; ``database_url`` comes from the base."""

    service: ClassVar[str] = "incidents"
    model_config = SettingsConfigDict(env_prefix="TANDEM_INCIDENTS_", extra="ignore")

    #: ``key=service`` pairs, comma-separated; ``key=service@staging`` names the environment.
    routing_keys: str = ""
    #: JSON rows of priorities by impact (rows) and urgency (columns); the seed of the policy.
    priority_matrix: list[list[int]] = DEFAULT_PRIORITY_MATRIX
    #: ``priority=response/resolution`` pairs (``1=15m/4h``); the seed of the policy.
    sla_targets: str = DEFAULT_SLA_TARGETS
    #: How far back a new incident looks for suspect deployments and changes.
    suspect_window: str = "24h"
    #: How often the SLA check looks for due breaches.
    sla_check_interval_s: float = Field(default=30.0, gt=0)
    #: Whether this process applies accepted monitor events (an ingest-only replica leaves
    #: them to the others).
    monitor_applier: bool = True
    #: Accepted monitor events applied per transaction (``POST /v2/enqueue``'s queue).
    monitor_apply_batch: int = Field(default=500, ge=1, le=10000)
    #: How long the applier, woken by an accepted event, waits for more to apply together
    #: (a storm's repeats of one alert then become one count and one note).
    monitor_apply_linger_s: float = Field(default=0.2, ge=0)
    #: How long one applier transaction may work before it commits what it applied: requests
    #: recording events wait for SQLite's write lock meanwhile, and every request of the
    #: process for its loop (at 10 ms a person's incident list stays under 100 ms p99 in a
    #: storm of new keys; at 50 ms it took 160-190 ms, for 25 % less CPU an event).
    monitor_apply_budget_s: float = Field(default=0.01, gt=0)
    #: How often the monitor event applier looks for events other processes accepted (it is
    #: woken at once by its own process's).
    monitor_apply_interval_s: float = Field(default=0.5, gt=0)
    #: On-hold reasons that pause the resolution SLA (comma-separated; empty: none). Time
    #: spent resolved always pauses it.
    sla_pause_on_hold: str = "awaiting_caller,awaiting_vendor"
    #: Impact and urgency of the incident a failed production deployment opens (S2).
    deployment_failure_impact: int = Field(default=2, ge=1, le=3)
    deployment_failure_urgency: int = Field(default=1, ge=1, le=3)
    #: The priority of that incident by the service's catalog tier: ``tier=priority`` pairs,
    #: ``*`` for every other tier and for services the catalog does not know. P1/P2 is major
    #: and freezes the service (S4); the default freezes only the services people depend on.
    deployment_failure_priority_by_tier: str = "1=2,*=3"
    #: When a deployment recovering from a failure succeeds, its incident is mitigated; with
    #: this, resolved too (``rolled_back`` for a rollback, ``resolved_by_change`` otherwise).
    resolve_on_recovery: bool = False
    #: A post-incident review is due this many working days (Monday to Friday) after its
    #: incident is resolved; the check looks for overdue ones every ``review_check_interval_s``.
    review_due_working_days: int = Field(default=5, ge=1, le=60)
    review_check_interval_s: float = Field(default=60.0, gt=0)

    @field_validator("sla_pause_on_hold")
    @classmethod
    def _hold_reasons_known(cls, value: str) -> str:
        known = {"awaiting_caller", "awaiting_change", "awaiting_problem", "awaiting_vendor"}
        unknown = {r.strip() for r in value.split(",") if r.strip()} - known
        if unknown:
            raise ValueError(f"unknown on-hold reasons {sorted(unknown)}; known: "
                             f"{', '.join(sorted(known))}")
        return value

    @property
    def sla_pausing_hold_reasons(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.sla_pause_on_hold.split(",") if r.strip())

    @field_validator("suspect_window")
    @classmethod
    def _window_is_duration(cls, value: str) -> str:
        parse_ttl(value)
        return value

    @field_validator("priority_matrix")
    @classmethod
    def _matrix_is_3x3(cls, value: list[list[int]]) -> list[list[int]]:
        if len(value) != 3 or any(len(row) != 3 for row in value) or \
                any(not 1 <= p <= 5 for row in value for p in row):
            raise ValueError("the priority matrix is 3 rows of 3 priorities from 1 to 5")
        return value

    @field_validator("deployment_failure_priority_by_tier")
    @classmethod
    def _tiers_parse(cls, value: str) -> str:
        parse_priority_by_tier(value)
        return value

    def deployment_failure_priority(self, tier: int | None) -> int:
        """The priority of a failed production deployment's incident for a service of
        ``tier`` (None: not in the catalog, or no tier)."""
        by_tier = parse_priority_by_tier(self.deployment_failure_priority_by_tier)
        return by_tier.get(str(tier) if tier is not None else "*", by_tier["*"])

    @field_validator("routing_keys")
    @classmethod
    def _routing_keys_parse(cls, value: str) -> str:
        parse_routing_keys(value)
        return value

    @field_validator("sla_targets")
    @classmethod
    def _sla_targets_parse(cls, value: str) -> str:
        parse_sla_targets(value)
        return value

    @property
    def suspect_window_delta(self) -> timedelta:
        return parse_ttl(self.suspect_window)

    def routes(self) -> dict[str, tuple[str, str]]:
        """Routing key -> (service, environment)."""
        return parse_routing_keys(self.routing_keys)

    def sla_target_seconds(self) -> dict[int, tuple[int | None, int | None]]:
        # Parsed once per value: every incident opened without a stored policy asks.
        return dict(_parsed_sla_targets(self.sla_targets))


#: The running service's settings, as a route dependency.
Settings = Annotated[IncidentsSettings, Depends(service_settings)]


def parse_sla_targets(value: str) -> dict[int, tuple[int | None, int | None]]:
    """``"1=15m/4h"`` -> ``{1: (900, 14400), 2..5: (None, None)}`` (seconds; None = no target)."""
    targets: dict[int, tuple[int | None, int | None]] = dict.fromkeys(range(1, 6), (None, None))
    for pair in filter(None, (p.strip() for p in value.split(","))):
        priority, sep, spans = pair.partition("=")
        response, slash, resolution = spans.partition("/")
        if not sep or not slash or priority.strip() not in {"1", "2", "3", "4", "5"}:
            raise ValueError(f"SLA target {pair!r} is not priority=response/resolution")

        def seconds(span: str) -> int | None:
            span = span.strip()
            return None if span in ("", "-", "none") else int(parse_ttl(span).total_seconds())

        targets[int(priority)] = (seconds(response), seconds(resolution))
    return targets


_parsed_sla_targets = functools.lru_cache(maxsize=8)(parse_sla_targets)


def parse_priority_by_tier(value: str) -> dict[str, int]:
    """``"1=2,*=3"`` -> ``{"1": 2, "*": 3}`` (``*`` defaults to 3 when not given)."""
    out: dict[str, int] = {"*": 3}
    for pair in filter(None, (p.strip() for p in value.split(","))):
        tier, sep, priority = (part.strip() for part in pair.partition("="))
        if not sep or tier not in {"1", "2", "3", "4", "*"} or priority not in set("12345"):
            raise ValueError(f"priority by tier entry {pair!r} is not tier=priority (tier 1..4 "
                             "or *, priority 1..5)")
        out[tier] = int(priority)
    return out
