"""DORA, once: pure functions over plain records of deployments and incidents.

The deployments service (``GET /api/v1/dora``) and the dashboard's board both hand their
records of one environment to :func:`report`; neither computes a figure of its own. The
definitions are written out in docs/dora.md:

- a deployment *reached production* when it went live (``succeeded``, or ``rolled_back``
  after it had succeeded); the change failure rate and the rework rate count those;
- a deployment that moved to ``failed`` never served: a *failed deployment attempt*, reported
  beside the rate (``failed_deployment_attempts``), not inside it;
- a deployment *needed intervention* when it failed, was rolled back, or an incident names it
  its cause; its recovery is the earliest of its rollback, the next deployment of the service
  going live after the failure was known, and the resolution of an incident naming it;
- *rework* is an unplanned deployment made because of a production incident (an emergency
  change linked to it, a fix-forward naming it, or a rollback): the recording service sets it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

HOUR = 3600.0
#: Deployments that went live in the environment: frequency, lead time and the rates count them.
DEPLOYED_OUTCOMES = frozenset({"succeeded", "rolled_back"})
#: Deployments that reached the end of their run (a record a board may forget).
FINISHED_OUTCOMES = frozenset({"succeeded", "failed", "rolled_back"})
#: The metrics, in the order they are shown.
METRICS = ("deployment_frequency", "lead_time", "change_failure_rate",
           "failed_deployment_attempts", "failed_deployment_recovery_time", "time_to_restore",
           "deployment_rework_rate")


@dataclass(frozen=True)
class DeploymentRecord:
    """What DORA needs of one deployment of the environment, as its service recorded it."""

    id: str
    service: str
    #: Its state: requested, in_progress, succeeded, failed, rolled_back or canceled.
    status: str
    #: When it went live (succeeded); kept when it is later rolled back.
    deployed_at: datetime | None = None
    #: When it ended: succeeded or failed.
    finished_at: datetime | None = None
    #: When a deployment that had gone live was rolled back.
    rolled_back_at: datetime | None = None
    #: Seconds from each shipped commit to ``deployed_at`` (see :func:`lead_times`).
    lead_times_s: tuple[float, ...] = ()
    #: An unplanned deployment made because of a production incident (set when recorded).
    rework: bool = False


@dataclass(frozen=True)
class IncidentRecord:
    """An incident of the environment: reported, (perhaps) resolved, and the deployment it
    names its cause (declared by S2, or a confirmed suspect), if any."""

    id: str
    service: str
    reported_at: datetime
    resolved_at: datetime | None = None
    cause_deployment_id: str | None = None


@dataclass(frozen=True)
class DeploymentFact:
    """One deployment as the metrics see it (derived by :func:`deployment_facts`)."""

    outcome: str | None
    deployed_at: datetime | None = None
    finished_at: datetime | None = None
    lead_times_s: tuple[float, ...] = ()
    #: Needed intervention: failed, rolled back, or named the cause of an incident.
    failed: bool = False
    failure_started_at: datetime | None = None
    recovered_at: datetime | None = None
    rework: bool = False


@dataclass(frozen=True)
class RestoreFact:
    """An incident of the service: reported and (perhaps) resolved."""

    reported_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True)
class Metric:
    value: float | None
    unit: str
    sample_size: int
    bucket: str | None


class BucketRule(BaseModel):
    """Thresholds of one metric, best first: ``elite``, ``high``, ``medium``; else ``low``."""

    model_config = ConfigDict(extra="forbid")

    better: Literal["higher", "lower"]
    #: Whether a value equal to a threshold reaches it (``<= 5 %`` versus ``< 1 day``).
    inclusive: bool
    elite: float
    high: float
    medium: float


class BucketTable(BaseModel):
    """DORA 2023 buckets as DevLake encodes them; set ``TANDEM_DEPLOYMENTS_DORA_BUCKETS``.

    Frequency is judged on deploy days per week (elite: 5, on demand; high: 1 a week;
    medium: 1 a month = 7/30.44 a week); times in hours; rates as ratios.
    """

    model_config = ConfigDict(extra="forbid")

    deployment_frequency: BucketRule = BucketRule(
        better="higher", inclusive=True, elite=5.0, high=1.0, medium=7 / 30.44)
    lead_time: BucketRule = BucketRule(
        better="lower", inclusive=False, elite=24.0, high=24.0 * 7, medium=24.0 * 30)
    change_failure_rate: BucketRule = BucketRule(
        better="lower", inclusive=True, elite=0.05, high=0.10, medium=0.15)
    failed_deployment_recovery_time: BucketRule = BucketRule(
        better="lower", inclusive=False, elite=1.0, high=24.0, medium=24.0 * 7)
    time_to_restore: BucketRule = BucketRule(
        better="lower", inclusive=False, elite=1.0, high=24.0, medium=24.0 * 7)
    #: DORA publishes no bands for rework; Tandem uses the change failure rate's by default.
    deployment_rework_rate: BucketRule = BucketRule(
        better="lower", inclusive=True, elite=0.05, high=0.10, medium=0.15)


#: A window: 1 to 9999 hours, days or weeks (``30d``); the API schema carries the same pattern.
WINDOW_PATTERN = r"^([1-9][0-9]{0,3})([hdw])$"
_WINDOW = re.compile(WINDOW_PATTERN)


def parse_window(text: str) -> timedelta:
    """``30d`` -> 30 days; ``12h``, ``4w`` too. Raises ``ValueError`` for anything else."""
    m = _WINDOW.match(text.strip())
    if not m:
        raise ValueError(f"window {text!r} is not like 30d, 12h or 4w")
    n, unit = int(m.group(1)), m.group(2)
    return {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]


def interpolated_median(values: Sequence[float]) -> float:
    """The median, averaging the two middle values of an even count (PERCENTILE_CONT(0.5))."""
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def bucket_of(rule: BucketRule, value: float) -> str:
    """``elite``, ``high``, ``medium`` or ``low`` for ``value`` under ``rule``."""
    for name, threshold in (("elite", rule.elite), ("high", rule.high), ("medium", rule.medium)):
        if rule.better == "higher":
            reached = value >= threshold if rule.inclusive else value > threshold
        else:
            reached = value <= threshold if rule.inclusive else value < threshold
        if reached:
            return name
    return "low"


def _within(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def _median_metric(samples: list[float], unit: str, rule: BucketRule) -> Metric:
    if not samples:
        return Metric(None, unit, 0, None)
    value = interpolated_median(samples)
    return Metric(value, unit, len(samples), bucket_of(rule, value))


def _rate_metric(hits: int, total: int, rule: BucketRule) -> Metric:
    if total == 0:
        return Metric(None, "ratio", 0, None)
    value = hits / total
    return Metric(value, "ratio", total, bucket_of(rule, value))


def lead_times(committed: Iterable[datetime], deployed_at: datetime) -> tuple[float, ...]:
    """Seconds from each commit to the deployment going live (negatives kept; dropped later)."""
    return tuple((deployed_at - c).total_seconds() for c in committed)


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


def deployment_facts(records: Sequence[DeploymentRecord],
                     incidents: Sequence[IncidentRecord]) -> list[DeploymentFact]:
    """Each deployment's DORA facts: whether it needed intervention, when that began and
    when it was recovered (the rules are in the module's docstring and docs/dora.md)."""
    causes: dict[str, list[IncidentRecord]] = {}
    for incident in incidents:
        if incident.cause_deployment_id is not None:
            causes.setdefault(incident.cause_deployment_id, []).append(incident)
    live: dict[str, list[tuple[datetime, str]]] = {}
    for r in records:
        if r.status in DEPLOYED_OUTCOMES and r.deployed_at is not None:
            live.setdefault(r.service, []).append((r.deployed_at, r.id))
    for moments in live.values():
        moments.sort()
    facts = []
    for r in records:
        named = causes.get(r.id, [])
        if r.status == "failed":
            started, known = r.finished_at, r.finished_at
        elif r.status == "rolled_back" or (named and r.deployed_at is not None):
            started = r.deployed_at
            known = _earliest(r.rolled_back_at, *(i.reported_at for i in named))
        else:
            started = known = None
        failed = started is not None
        recovered = None
        if failed and started is not None and known is not None:
            fix = next((at for at, other in live.get(r.service, ())
                        if other != r.id and at >= known and at > started), None)
            resolved = [i.resolved_at for i in named
                        if i.resolved_at is not None and i.resolved_at >= started]
            recovered = _earliest(r.rolled_back_at, fix, *resolved)
        facts.append(DeploymentFact(
            outcome=r.status, deployed_at=r.deployed_at, finished_at=r.finished_at,
            lead_times_s=r.lead_times_s, failed=failed, failure_started_at=started,
            recovered_at=recovered, rework=r.rework))
    return facts


def deployment_frequency(facts: Iterable[DeploymentFact], *, start: datetime, end: datetime,
                         rule: BucketRule) -> Metric:
    """Deployments gone live per week; bucketed on distinct deploy days per week."""
    deployed = [f.deployed_at for f in facts
                if f.outcome in DEPLOYED_OUTCOMES and _within(f.deployed_at, start, end)]
    weeks = (end - start) / timedelta(weeks=1)
    if not deployed:
        return Metric(0.0, "deployments/week", 0, None)
    days = len({d.date() for d in deployed if d is not None})
    return Metric(len(deployed) / weeks, "deployments/week", len(deployed),
                  bucket_of(rule, days / weeks))


def dora_metrics(facts: Sequence[DeploymentFact], incidents: Sequence[RestoreFact], *,
                 start: datetime, end: datetime, buckets: BucketTable) -> dict[str, Metric]:
    """The metrics over ``[start, end)`` for one environment (of one service, or several)."""
    deployed = [f for f in facts
                if f.outcome in DEPLOYED_OUTCOMES and _within(f.deployed_at, start, end)]
    lead = [s / HOUR for f in deployed for s in f.lead_times_s if s > 0]
    attempts = sum(1 for f in facts if f.outcome == "failed"
                   and _within(f.finished_at, start, end))
    recoveries = [
        (f.recovered_at - f.failure_started_at).total_seconds() / HOUR
        for f in facts
        if f.failed and f.recovered_at is not None and f.failure_started_at is not None
        and _within(f.failure_started_at, start, end)
    ]
    restores = [(i.resolved_at - i.reported_at).total_seconds() / HOUR for i in incidents
                if i.resolved_at is not None and _within(i.reported_at, start, end)]
    return {
        "deployment_frequency": deployment_frequency(
            facts, start=start, end=end, rule=buckets.deployment_frequency),
        "lead_time": _median_metric(lead, "hours", buckets.lead_time),
        "change_failure_rate": _rate_metric(sum(f.failed for f in deployed), len(deployed),
                                            buckets.change_failure_rate),
        "failed_deployment_attempts": Metric(float(attempts), "deployments", attempts, None),
        "failed_deployment_recovery_time": _median_metric(
            [max(r, 0.0) for r in recoveries], "hours", buckets.failed_deployment_recovery_time),
        "time_to_restore": _median_metric([max(r, 0.0) for r in restores], "hours",
                                          buckets.time_to_restore),
        "deployment_rework_rate": _rate_metric(sum(f.rework for f in deployed), len(deployed),
                                               buckets.deployment_rework_rate),
    }


def report(records: Sequence[DeploymentRecord], incidents: Sequence[IncidentRecord], *,
           start: datetime, end: datetime, buckets: BucketTable) -> dict[str, Metric]:
    """The metrics over ``[start, end)`` from the records of one environment."""
    return dora_metrics(deployment_facts(records, incidents),
                        [RestoreFact(i.reported_at, i.resolved_at) for i in incidents],
                        start=start, end=end, buckets=buckets)
