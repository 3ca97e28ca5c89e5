"""Pure incident rules: the lifecycle, priority from impact x urgency, SLA due times.

Everything here is plain data in, plain data out, so it is tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from tandem.transitions import StateMachine


class Status(StrEnum):
    new = "new"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    on_hold = "on_hold"
    resolved = "resolved"
    closed = "closed"
    canceled = "canceled"


LIFECYCLE = StateMachine(
    "incident",
    {
        "new": {"acknowledged", "in_progress", "resolved", "canceled"},
        "acknowledged": {"in_progress", "resolved", "canceled"},
        "in_progress": {"on_hold", "resolved", "canceled"},
        "on_hold": {"in_progress", "canceled"},
        # resolved -> in_progress is a reopen.
        "resolved": {"in_progress", "closed"},
        "closed": set(),
        "canceled": set(),
    },
)

#: States in which an incident still needs work (monitor dedup keys and SLAs watch these).
OPEN_STATES = ("new", "acknowledged", "in_progress", "on_hold")
FINAL_STATES = ("closed", "canceled")


class OnHoldReason(StrEnum):
    awaiting_caller = "awaiting_caller"
    awaiting_change = "awaiting_change"
    awaiting_problem = "awaiting_problem"
    awaiting_vendor = "awaiting_vendor"


class ResolutionCode(StrEnum):
    duplicate = "duplicate"
    known_error = "known_error"
    no_resolution = "no_resolution"
    resolved_by_caller = "resolved_by_caller"
    resolved_by_change = "resolved_by_change"
    resolved_by_problem = "resolved_by_problem"
    solution_provided = "solution_provided"
    rolled_back = "rolled_back"


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


#: What a monitor's PagerDuty severity means as (impact, urgency).
SEVERITY_IMPACT_URGENCY = {
    "critical": (1, 1),
    "error": (2, 1),
    "warning": (2, 2),
    "info": (3, 3),
}
