"""The incident lifecycle, as pure rules: its states, the legal moves, what each move needs
and the facts it sets (timestamps, reasons, the reopen count).

Plain data in, plain data out (or a domain error), so it is tested without a database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from incidents.errors import MoveFieldInvalid
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


class Movable(Protocol):
    """The fields of an incident that its moves read and set."""

    status: str
    reopen_count: int
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    on_hold_reason: str | None
    resolution_code: str | None
    resolution_notes: str | None


def check_move(status: str, to: str, *, on_hold_reason: OnHoldReason | None,
               resolution_code: ResolutionCode | None, resolution_notes: str | None) -> None:
    """Refuse an illegal move (``IllegalTransition``, ``Invalid`` for no such state) or a move
    whose state-specific fields are missing or misplaced (:class:`MoveFieldInvalid`)."""
    LIFECYCLE.check(status, to)
    if on_hold_reason is not None and to != "on_hold":
        raise MoveFieldInvalid("on_hold_reason", "only a move to on_hold takes it")
    if to != "resolved":
        for name, value in (("resolution_code", resolution_code),
                            ("resolution_notes", resolution_notes)):
            if value is not None:
                raise MoveFieldInvalid(name, "only a move to resolved takes it")
    if to == "on_hold" and on_hold_reason is None:
        raise MoveFieldInvalid("on_hold_reason", "a move to on_hold needs one of "
                               "awaiting_caller, awaiting_change, awaiting_problem, "
                               "awaiting_vendor")
    if to == "resolved" and (resolution_code is None or resolution_notes is None):
        missing = "resolution_code" if resolution_code is None else "resolution_notes"
        raise MoveFieldInvalid(missing, "a move to resolved needs resolution_code and "
                               "resolution_notes")


def apply_move(incident: Movable, to: str, *, on_hold_reason: OnHoldReason | None = None,
               resolution_code: ResolutionCode | None = None,
               resolution_notes: str | None = None, now: datetime | None = None) -> None:
    """Move ``incident`` to ``to`` (already checked) with the facts the move sets."""
    now = now or datetime.now(UTC)
    if incident.status == "resolved" and to == "in_progress":
        incident.reopen_count += 1
        incident.resolved_at = None
        incident.resolution_code = incident.resolution_notes = None
    if (incident.status == "new" and to in ("acknowledged", "in_progress")
            and incident.acknowledged_at is None):
        # The first acknowledgement, explicit or by starting work on a new incident (the first
        # response), is what MTTA measures. A reopen is neither: an incident resolved without
        # one stays unacknowledged, and MTTA leaves it out.
        incident.acknowledged_at = now
    incident.on_hold_reason = on_hold_reason.value if to == "on_hold" and on_hold_reason \
        else None
    if to == "resolved":
        incident.resolved_at = now
        incident.mitigated_at = incident.mitigated_at or now
        incident.resolution_code = resolution_code.value if resolution_code else None
        incident.resolution_notes = resolution_notes
    if to in ("closed", "canceled"):
        incident.closed_at = now
    incident.status = to
