"""Change enablement rules as pure functions over plain data: paths, moves, windows, freezes,
conflicts, risk and the change success score. No I/O here; service.py applies them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from changes.config import RiskRule
from tandem.problems import Problem
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
#: States in which managers record approvals.
APPROVABLE = {"assess", "authorize"}
#: States that hold a slot in the schedule (for conflicts).
OCCUPYING = {"scheduled", "implement"}
FINAL = {"closed", "canceled"}

#: Every move a freeze makes; clients may only end one (early).
FREEZE_MOVES = StateMachine("freeze", {"scheduled": {"active", "ended"}, "active": {"ended"}})
FREEZE_API_MOVES = StateMachine("freeze", {"scheduled": {"ended"}, "active": {"ended"},
                                           "ended": set()})

CLOSE_SCORE = {"successful": 3, "successful_with_issues": -2, "unsuccessful": -5}
CAUSE_SCORE = {1: -10, 2: -5, 3: -2}


def approvals_required(change_type: str, normal: int, emergency: int) -> int:
    """How many approvals a change of ``change_type`` needs to leave authorize."""
    return {"normal": normal, "emergency": emergency}.get(change_type, 0)


@dataclass(frozen=True)
class Move:
    """Everything a change's move depends on, as plain facts."""

    type: str
    status: str
    to: str
    approvals_received: int = 0
    approvals_required: int = 0
    #: An active freeze covers the change's service now.
    frozen: bool = False
    conflicts: int = 0
    force: bool = False
    may_force: bool = False
    has_window: bool = True
    close_code: str | None = None


def check_move(move: Move) -> None:
    """Raise a problem unless ``move`` is legal: its type's path, approvals, window, conflicts,
    freezes and close code."""
    path = PATHS[move.type]
    if move.to in CHANGE_STATES and move.to not in path.states:
        allowed = path.allowed(move.status)
        raise Problem(409, f"A {move.type} change has no {move.to} state; from {move.status} it "
                           f"may move to: {', '.join(allowed) or 'none (final state)'}.",
                      type_="urn:tandem:problem:illegal-transition", allowed=allowed,
                      current=move.status)
    path.check(move.status, move.to)
    if move.to == "scheduled":
        if not move.has_window:
            raise Problem(422, "A change needs planned_start and planned_end to be scheduled.",
                          type_="urn:tandem:problem:window-required")
        if move.approvals_received < move.approvals_required:
            raise Problem(409, f"This {move.type} change has {move.approvals_received} of "
                               f"{move.approvals_required} approvals needed to be scheduled.",
                          type_="urn:tandem:problem:approvals-missing",
                          approvals_received=move.approvals_received,
                          approvals_required=move.approvals_required, allowed=[])
        if move.force and not move.may_force:
            raise Problem(403, "Only a manager or owner may force a change past its conflicts.",
                          type_="urn:tandem:problem:forbidden")
        if move.conflicts and not move.force:
            raise Problem(409, f"The planned window has {move.conflicts} conflict(s); see "
                               "GET /conflicts, or have a manager move it with force: true.",
                          type_="urn:tandem:problem:schedule-conflict", allowed=[])
    if move.to == "implement" and move.frozen and move.type != "emergency":
        raise Problem(409, "The service is frozen: only an emergency change may be implemented "
                           "now.", type_="urn:tandem:problem:frozen", allowed=["canceled"])
    if move.to == "closed" and move.close_code is None:
        raise Problem(422, "Closing a change needs a close_code: successful, "
                           "successful_with_issues or unsuccessful.",
                      type_="urn:tandem:problem:close-code-required")


def check_window(start: datetime | None, end: datetime | None, max_hours: float) -> None:
    """Raise a 422 problem unless the planned window is absent or well formed."""
    if start is None and end is None:
        return
    if start is None or end is None:
        raise Problem(422, "planned_start and planned_end go together.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "planned_start" if start is None else "planned_end",
                               "message": "required with the other end of the window"}])
    if end <= start:
        raise Problem(422, "planned_end must be after planned_start.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "planned_end", "message": "must be after planned_start"}])
    if end - start > timedelta(hours=max_hours):
        raise Problem(422, f"A planned window may last at most {max_hours:g} hours.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "planned_end",
                               "message": f"window longer than {max_hours:g} hours"}])


def overlaps(a_start: datetime, a_end: datetime | None, b_start: datetime,
             b_end: datetime | None) -> bool:
    """Half-open windows ``[start, end)`` overlap; a missing end is open-ended."""
    return (b_end is None or a_start < b_end) and (a_end is None or b_start < a_end)


def freeze_covers(freeze_services: Sequence[str], service: str) -> bool:
    """A freeze of no named services covers every service."""
    return not freeze_services or service in freeze_services


def freeze_spares(change_type: str, change_incident_id: object,
                  freeze_incident_id: object) -> bool:
    """An emergency change that fixes an incident is not held by that incident's own freeze:
    the freeze exists so that only the fix goes through (S4)."""
    return (change_type == "emergency" and change_incident_id is not None
            and change_incident_id == freeze_incident_id)


def freeze_in_force(status: str, starts_at: datetime, ends_at: datetime | None,
                    now: datetime) -> bool:
    """Whether a freeze holds at ``now`` (by its times, so the clock job's lag never leaks)."""
    return status != "ended" and starts_at <= now and (ends_at is None or now < ends_at)


def freeze_status_at(starts_at: datetime, ends_at: datetime | None, now: datetime) -> str:
    if ends_at is not None and ends_at <= now:
        return "ended"
    return "active" if starts_at <= now else "scheduled"


@dataclass(frozen=True)
class RiskFacts:
    type: str
    environment: str
    window_hours: float | None
    success_score: int
    open_incidents: int
    open_major_incidents: int


def assess_risk(rules: Iterable[RiskRule], default: str,
                facts: RiskFacts) -> tuple[str, str | None]:
    """The first rule whose conditions all hold sets the risk; else ``default``."""
    for rule in rules:
        if rule.environments is not None and facts.environment not in rule.environments:
            continue
        if rule.types is not None and facts.type not in rule.types:
            continue
        if rule.min_window_hours is not None and (
                facts.window_hours is None or facts.window_hours < rule.min_window_hours):
            continue
        if rule.max_success_score is not None and facts.success_score > rule.max_success_score:
            continue
        if rule.min_open_incidents is not None and facts.open_incidents < rule.min_open_incidents:
            continue
        if (rule.min_open_major_incidents is not None
                and facts.open_major_incidents < rule.min_open_major_incidents):
            continue
        return rule.risk, rule.name
    return default, None


def cause_score(priority: int | None) -> int:
    """Score change for a confirmed cause: P1 -10, P2 -5, P3 -2, lower priorities nothing."""
    return CAUSE_SCORE.get(priority or 0, 0)
