"""The change model (domain.md): each type's path, the planned window, the edits a state
allows, and whether a move may be made now (approvals, window, conflicts, freezes, close code).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from changes.errors import (
    ApprovalsMissing,
    ChangeFinal,
    CloseCodeRequired,
    FieldRequired,
    ForceForbidden,
    Frozen,
    ImplementOutsideWindow,
    IncidentLinkInvalid,
    ScheduleConflict,
    WindowFixed,
    WindowRequired,
)
from tandem.errors import DomainError, IllegalTransition, Invalid
from tandem.transitions import StateMachine

#: The change model of each type (domain.md); revert to new from assess/authorize.
PATHS: dict[str, StateMachine] = {
    "normal": StateMachine("normal change", {
        "new": {"assess", "canceled"},
        "assess": {"authorize", "new", "canceled"},
        "authorize": {"scheduled", "new", "canceled"},
        "scheduled": {"implement", "canceled"},
        "implement": {"review", "canceled"},
        "review": {"closed"},
        "closed": set(),
        "canceled": set(),
    }),
    "emergency": StateMachine("emergency change", {
        "new": {"authorize", "canceled"},
        "authorize": {"scheduled", "new", "canceled"},
        "scheduled": {"implement", "canceled"},
        "implement": {"review", "canceled"},
        "review": {"closed"},
        "closed": set(),
        "canceled": set(),
    }),
    "standard": StateMachine("standard change", {
        "new": {"scheduled", "canceled"},
        "scheduled": {"implement", "canceled"},
        "implement": {"review", "canceled"},
        "review": {"closed"},
        "closed": set(),
        "canceled": set(),
    }),
}

#: Every change state of any type: a state another type has is a 409 for this one, not a 422.
CHANGE_STATES = frozenset(s for m in PATHS.values() for s in m.states)

#: States whose planned window may still be edited (before it is scheduled).
WINDOW_EDITABLE = {"new", "assess", "authorize"}
#: States that hold a slot in the schedule (for conflicts).
OCCUPYING = {"scheduled", "implement"}
FINAL = {"closed", "canceled"}
#: Fields every change keeps once given: a PATCH may change them, never clear them.
REQUIRED_ON_EDIT = ("title", "description", "planned_start", "planned_end", "risk")


@dataclass(frozen=True)
class Move:
    """Everything a change's move depends on, as plain facts."""

    type: str
    status: str
    to: str
    approvals_received: int = 0
    approvals_required: int = 0
    #: Under approvals by ownership: teams whose manager has not approved yet.
    approvals_missing: tuple[str, ...] = ()
    #: An active freeze covers the change's service now.
    frozen: bool = False
    conflicts: int = 0
    force: bool = False
    may_force: bool = False
    has_window: bool = True
    close_code: str | None = None
    #: Now is inside the planned window (or the move extends the window to cover it).
    in_window: bool = True
    planned_start: datetime | None = None
    planned_end: datetime | None = None


def move_refusal(move: Move) -> DomainError | None:
    """Why ``move`` may not be made now (its type's path, approvals, window, conflicts,
    freezes, close code), or None when it may."""
    path = PATHS[move.type]
    if move.to in CHANGE_STATES and move.to not in path.states:
        allowed = path.allowed(move.status)
        return IllegalTransition(
            f"A {move.type} change has no {move.to} state; from {move.status} it may move to: "
            f"{', '.join(allowed) or 'none (final state)'}.", allowed=allowed,
            current=move.status)
    if not path.can(move.status, move.to):
        return _path_refusal(path, move.status, move.to)
    if move.to == "scheduled":
        if not move.has_window:
            return WindowRequired()
        if move.approvals_received < move.approvals_required or move.approvals_missing:
            return ApprovalsMissing(move.type, move.approvals_received, move.approvals_required,
                                    move.approvals_missing)
        if move.force and not move.may_force:
            return ForceForbidden()
        if move.conflicts and not move.force:
            return ScheduleConflict(move.conflicts)
    if move.to == "implement" and move.frozen and move.type != "emergency":
        return Frozen()
    if move.to == "implement" and not move.in_window:
        # An emergency change's window is extended instead (window_extension).
        if not move.force:
            return ImplementOutsideWindow(move.planned_start, move.planned_end)
        if not move.may_force:
            return ForceForbidden()
    if move.to == "closed" and move.close_code is None:
        return CloseCodeRequired()
    return None


def check_move(move: Move) -> None:
    """Raise the :func:`move_refusal` of ``move``, if it has one."""
    if (refusal := move_refusal(move)) is not None:
        raise refusal


def _path_refusal(path: StateMachine, status: str, to: str) -> DomainError:
    # StateMachine words its refusals (an illegal move, an unknown state) but only raises
    # them; taken here as a value, so move_refusal answers every refusal the same way.
    try:
        path.check(status, to)
    except (IllegalTransition, Invalid) as refusal:
        return refusal
    raise AssertionError(f"{status} -> {to} is legal")


def check_window(start: datetime | None, end: datetime | None, max_hours: float) -> None:
    """Raise :class:`~tandem.errors.Invalid` unless the planned window is absent or well formed
    (both ends, end after start, at most ``max_hours`` long)."""
    if start is None and end is None:
        return
    if start is None or end is None:
        raise Invalid("planned_start" if start is None else "planned_end",
                      "required with the other end of the window",
                      detail="planned_start and planned_end go together.")
    if end <= start:
        raise Invalid("planned_end", "must be after planned_start",
                      detail="planned_end must be after planned_start.")
    if end - start > timedelta(hours=max_hours):
        raise Invalid("planned_end", f"window longer than {max_hours:g} hours",
                      detail=f"A planned window may last at most {max_hours:g} hours.")


def check_incident_link(change_type: str, incident_id: object) -> None:
    """Only an emergency change names the incident it fixes."""
    if incident_id is not None and change_type != "emergency":
        raise IncidentLinkInvalid()


def check_edit(change_type: str, status: str, given: Mapping[str, Any]) -> None:
    """Raise unless a PATCH with the fields ``given`` may be applied to a change in ``status``:
    final changes are read-only, required fields are never cleared, the window is fixed once
    scheduled, and only an emergency change names an incident."""
    if status in FINAL:
        raise ChangeFinal(status)
    for name in REQUIRED_ON_EDIT:
        if name in given and given[name] is None:
            raise FieldRequired(name)
    if ("planned_start" in given or "planned_end" in given) and status not in WINDOW_EDITABLE:
        raise WindowFixed(status)
    check_incident_link(change_type, given.get("incident_id"))


def overlaps(a_start: datetime, a_end: datetime | None, b_start: datetime,
             b_end: datetime | None) -> bool:
    """Half-open windows ``[start, end)`` overlap; a missing end is open-ended."""
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def window_covers(start: datetime | None, end: datetime | None, now: datetime) -> bool:
    """Whether now is inside the planned window ``[start, end]`` (no window: nothing to keep
    to)."""
    if start is None or end is None:
        return True
    return start <= now <= end


def window_extension(start: datetime | None, end: datetime | None,
                     now: datetime) -> tuple[datetime, datetime] | None:
    """The window an emergency change (or a deployment's own change) takes when it is
    scheduled or implemented outside its planned one: as long as planned, from now; None
    when the planned window covers now (or there is none)."""
    if start is None or end is None or window_covers(start, end, now):
        return None
    if now < start or end < now:
        return now, now + (end - start)
    return None
