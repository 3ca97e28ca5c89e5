"""DORA arithmetic over the deployments and incidents the board has seen: pure functions.

The board shows a simple, labelled reading of the four keys per service (the deployments
service's ``/api/v1/dora`` is the reference figure). Conventions, documented on the page:

- a deployment *reached production* when it is ``succeeded`` or ``rolled_back`` (it ran);
- it *failed* when it is ``failed`` or ``rolled_back``, or an incident names it as its cause;
- lead time is per (deployment, commit), from commit to the deployment finishing, values <= 0
  dropped; medians are interpolated (the mean of the two middle values);
- recovery runs from a failed deployment finishing to the earlier of the service's next
  deployment reaching production and the resolution of an incident it caused.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

REACHED = frozenset({"succeeded", "rolled_back"})
FINISHED = frozenset({"succeeded", "failed", "rolled_back"})
FAILED = frozenset({"failed", "rolled_back"})

ELITE, HIGH, MEDIUM, LOW = "elite", "high", "medium", "low"


@dataclass(frozen=True)
class DeploymentFacts:
    """What DORA needs of one deployment."""

    id: str
    service: str
    status: str
    finished_at: datetime | None
    commit_times: tuple[datetime, ...] = ()
    #: Set when an incident names this deployment as its cause.
    caused_incident: bool = False
    #: When the earliest-resolved incident it caused was resolved, if any.
    incident_resolved_at: datetime | None = None
    #: An unplanned deployment made because of a production incident.
    rework: bool = False

    @property
    def failed(self) -> bool:
        return self.status in FAILED or self.caused_incident


@dataclass(frozen=True)
class RestoreFacts:
    """An incident of the service: reported and (maybe) resolved, for time to restore."""

    reported_at: datetime
    resolved_at: datetime | None


@dataclass
class Metric:
    value: float | None
    unit: str
    sample_size: int
    bucket: str | None
    trend: list[float | None] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "sample_size": self.sample_size,
                "bucket": self.bucket, "trend": self.trend}


def median(values: Iterable[float]) -> float | None:
    """The interpolated median: the middle value, or the mean of the two middle values."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    mid = n // 2
    if n % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def _in(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment < end


def frequency_bucket(deployments: int, deploy_days: int, days: float) -> str:
    """On demand (>= 5 deploy days a week), >= 1 a week, >= 1 a month, less."""
    weeks = days / 7
    if deploy_days / weeks >= 5:
        return ELITE
    if deployments / weeks >= 1:
        return HIGH
    if deployments / (days / 30) >= 1:
        return MEDIUM
    return LOW


def lead_time_bucket(hours: float) -> str:
    return ELITE if hours < 24 else HIGH if hours < 24 * 7 else MEDIUM if hours < 24 * 30 else LOW


def failure_rate_bucket(percent: float) -> str:
    return ELITE if percent <= 5 else HIGH if percent <= 10 else MEDIUM if percent <= 15 else LOW


def recovery_bucket(hours: float) -> str:
    return ELITE if hours < 1 else HIGH if hours < 24 else MEDIUM if hours < 24 * 7 else LOW


def deployment_frequency(deps: Sequence[DeploymentFacts], start: datetime,
                         end: datetime) -> Metric:
    """Deployments reaching production per week in [start, end)."""
    reached = [d for d in deps if d.status in REACHED and _in(d.finished_at, start, end)]
    days = max((end - start).total_seconds() / 86400, 1e-9)
    per_week = len(reached) / (days / 7)
    deploy_days = len({d.finished_at.date() for d in reached if d.finished_at is not None})
    return Metric(round(per_week, 2), "deployments/week", len(reached),
                  frequency_bucket(len(reached), deploy_days, days))


def lead_time(deps: Sequence[DeploymentFacts], start: datetime, end: datetime) -> Metric:
    """Median hours from commit to running in production, per (deployment, commit)."""
    values = [
        _hours(d.finished_at - c)
        for d in deps
        if d.status in REACHED and d.finished_at is not None and _in(d.finished_at, start, end)
        for c in d.commit_times
        if d.finished_at > c
    ]
    value = median(values)
    return Metric(None if value is None else round(value, 2), "hours", len(values),
                  None if value is None else lead_time_bucket(value))


def change_failure_rate(deps: Sequence[DeploymentFacts], start: datetime,
                        end: datetime) -> Metric:
    """Percent of finished production deployments that failed or caused an incident."""
    finished = [d for d in deps if d.status in FINISHED and _in(d.finished_at, start, end)]
    if not finished:
        return Metric(None, "percent", 0, None)
    percent = 100 * sum(d.failed for d in finished) / len(finished)
    return Metric(round(percent, 1), "percent", len(finished), failure_rate_bucket(percent))


def recovery_times(deps: Sequence[DeploymentFacts], start: datetime,
                   end: datetime) -> list[float]:
    """Hours from each failed deployment (finished in the window) to its recovery, if any."""
    reached = sorted(d.finished_at for d in deps
                      if d.status == "succeeded" and d.finished_at is not None)
    out = []
    for d in deps:
        if not d.failed or d.finished_at is None or not _in(d.finished_at, start, end):
            continue
        failed_at = d.finished_at
        candidates = [t for t in reached if t > failed_at][:1]
        if d.incident_resolved_at is not None and d.incident_resolved_at > failed_at:
            candidates.append(d.incident_resolved_at)
        if candidates:
            out.append(_hours(min(candidates) - failed_at))
    return out


def recovery_time(deps: Sequence[DeploymentFacts], start: datetime, end: datetime) -> Metric:
    """Median failed deployment recovery time in hours."""
    values = recovery_times(deps, start, end)
    value = median(values)
    return Metric(None if value is None else round(value, 2), "hours", len(values),
                  None if value is None else recovery_bucket(value))


def rework_rate(deps: Sequence[DeploymentFacts], start: datetime, end: datetime) -> Metric:
    """Percent of deployments reaching production that were unplanned incident fixes."""
    reached = [d for d in deps if d.status in REACHED and _in(d.finished_at, start, end)]
    if not reached:
        return Metric(None, "percent", 0, None)
    percent = 100 * sum(d.rework for d in reached) / len(reached)
    # DORA publishes no buckets for rework rate yet.
    return Metric(round(percent, 1), "percent", len(reached), None)


def time_to_restore(incidents: Sequence[RestoreFacts], start: datetime, end: datetime) -> Metric:
    """Median hours from an incident being reported to its resolution, resolved in the window."""
    values = [_hours(i.resolved_at - i.reported_at) for i in incidents
              if i.resolved_at is not None and _in(i.resolved_at, start, end)
              and i.resolved_at >= i.reported_at]
    value = median(values)
    return Metric(None if value is None else round(value, 2), "hours", len(values),
                  None if value is None else recovery_bucket(value))


def service_dora(deps: Sequence[DeploymentFacts], incidents: Sequence[RestoreFacts], *,
                 now: datetime, window_days: int, trend_weeks: int) -> dict[str, Metric]:
    """The metrics over the last ``window_days`` with a weekly trend, oldest week first."""
    start = now - timedelta(days=window_days)
    metrics = {
        "deployment_frequency": deployment_frequency(deps, start, now),
        "lead_time": lead_time(deps, start, now),
        "change_failure_rate": change_failure_rate(deps, start, now),
        "failed_deployment_recovery_time": recovery_time(deps, start, now),
        "time_to_restore": time_to_restore(incidents, start, now),
        "deployment_rework_rate": rework_rate(deps, start, now),
    }
    for week in range(trend_weeks - 1, -1, -1):
        w_end = now - timedelta(days=7 * week)
        w_start = w_end - timedelta(days=7)
        weekly = {
            "deployment_frequency": deployment_frequency(deps, w_start, w_end),
            "lead_time": lead_time(deps, w_start, w_end),
            "change_failure_rate": change_failure_rate(deps, w_start, w_end),
            "failed_deployment_recovery_time": recovery_time(deps, w_start, w_end),
            "time_to_restore": time_to_restore(incidents, w_start, w_end),
            "deployment_rework_rate": rework_rate(deps, w_start, w_end),
        }
        for name, metric in weekly.items():
            metrics[name].trend.append(metric.value)
    return metrics
