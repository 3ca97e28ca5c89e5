"""Freeze windows: what a freeze covers, when it holds, how it ends, and S4 (an open P1/P2
incident freezes its service)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tandem.errors import Invalid
from tandem.transitions import StateMachine

#: The moves a client makes: ending a freeze early. The freeze clock moves the rest by time
#: (:func:`freeze_status_at`): scheduled -> active -> ended.
FREEZE_API_MOVES = StateMachine("freeze", {"scheduled": {"ended"}, "active": {"ended"},
                                           "ended": set()})

#: An incident is open until one of these; while open at P1/P2 it freezes its service.
INCIDENT_OVER = ("resolved", "closed", "canceled")
#: The lowest priority (highest number) whose open incident freezes its service.
FREEZING_PRIORITY = 2


def check_freeze_window(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """Raise :class:`~tandem.errors.Invalid` unless a manual freeze ends after it starts and
    after ``now``."""
    if ends_at <= starts_at:
        raise Invalid("ends_at", "must be after starts_at",
                      detail="The freeze is not valid: ends_at must be after starts_at")
    if ends_at <= now:
        raise Invalid("ends_at", "must be in the future",
                      detail="The freeze is not valid: ends_at must be in the future")


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
    """The status a freeze has at ``now`` by its times."""
    if ends_at is not None and ends_at <= now:
        return "ended"
    return "active" if starts_at <= now else "scheduled"


def early_end_at(starts_at: datetime, ends_at: datetime | None, now: datetime) -> datetime | None:
    """The ``ends_at`` of a freeze ended at ``now``: an early end shortens the announced
    window, so readers of the times agree with its status."""
    if ends_at is None or ends_at > now:
        return max(now, starts_at)
    return ends_at


def incident_is_open(status: str) -> bool:
    return status not in INCIDENT_OVER


def incident_freezes_its_service(priority: int, status: str) -> bool:
    """S4: an open P1 or P2 incident freezes its service until it is resolved or canceled."""
    return incident_is_open(status) and priority <= FREEZING_PRIORITY
