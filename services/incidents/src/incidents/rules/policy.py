"""The incident policy's rules, pure: priority from impact x urgency, major incidents, SLA due
times, and what a monitor's severity means.

Plain data in, plain data out, so it is tested without a database. The policy in force (the
owner's edit, else the settings' seed) is read by :mod:`incidents.policy_store`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

PriorityMatrix = Sequence[Sequence[int]]
#: Priority -> (response seconds, resolution seconds); None means no target.
SlaTargets = Mapping[int, tuple[int | None, int | None]]


def derive_priority(matrix: PriorityMatrix, impact: int, urgency: int) -> int:
    """The priority (1 = P1) the matrix gives ``impact`` and ``urgency`` (each 1..3)."""
    if not (1 <= impact <= 3 and 1 <= urgency <= 3):
        raise ValueError("impact and urgency are 1 to 3")
    return matrix[impact - 1][urgency - 1]


def is_major(priority: int, declared: bool) -> bool:
    """Major: P1 or P2, or declared by a manager."""
    return priority <= 2 or declared


def sla_due(reported_at: datetime, priority: int,
            targets: SlaTargets) -> tuple[datetime | None, datetime | None]:
    """Response and resolution due times of an incident of ``priority`` reported then."""
    response, resolution = targets.get(priority, (None, None))
    return (None if response is None else reported_at + timedelta(seconds=response),
            None if resolution is None else reported_at + timedelta(seconds=resolution))


class Timed(Protocol):
    """The fields of an incident its SLA due times follow from."""

    priority: int
    reported_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    response_breached_at: datetime | None
    resolution_breached_at: datetime | None
    resolution_paused_at: datetime | None
    resolution_paused_seconds: float


def set_due_times(incident: Timed, targets: SlaTargets) -> None:
    """(Re)compute SLA due times from ``reported_at`` for the targets not yet met or
    breached (a priority change moves only what is still ahead); the resolution due time
    is later by the time its clock was paused."""
    response, resolution = sla_due(incident.reported_at, incident.priority, targets)
    if incident.acknowledged_at is None and incident.response_breached_at is None:
        incident.response_due_at = response
    if incident.resolved_at is None and incident.resolution_breached_at is None:
        incident.resolution_due_at = (
            None if resolution is None
            else resolution + timedelta(seconds=incident.resolution_paused_seconds))


def pauses_resolution(status: str, on_hold_reason: str | None,
                      pausing_hold_reasons: frozenset[str]) -> bool:
    """Whether the resolution SLA's clock stands still in this state: while resolved (a
    reopen resumes it), and on hold for one of ``pausing_hold_reasons`` (ServiceNow's task
    SLA pause conditions)."""
    return status == "resolved" or (status == "on_hold" and on_hold_reason in pausing_hold_reasons)


def follow_resolution_pause(incident: Timed, *, paused: bool, now: datetime) -> None:
    """Start or end the resolution clock's pause as the incident's new state says: ending one
    moves the resolution due time (not yet breached) later by the time paused."""
    if paused:
        if incident.resolution_paused_at is None:
            incident.resolution_paused_at = now
        return
    if incident.resolution_paused_at is None:
        return
    held = max(now - incident.resolution_paused_at, timedelta(0))
    incident.resolution_paused_seconds += held.total_seconds()
    if incident.resolution_due_at is not None and incident.resolution_breached_at is None:
        incident.resolution_due_at += held
    incident.resolution_paused_at = None


#: What a monitor's PagerDuty severity means as (impact, urgency).
SEVERITY_IMPACT_URGENCY = {
    "critical": (1, 1),
    "error": (2, 1),
    "warning": (2, 2),
    "info": (3, 3),
}
