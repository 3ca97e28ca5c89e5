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


def freeze_covers(freeze_services: Sequence[str], service: str,
                  freeze_environments: Sequence[str] = (), environment: str | None = None,
                  ) -> bool:
    """A freeze of no named services covers every service, and one of no named environments
    every environment (a manual freeze's default). ``environment`` None asks about the service
    in any environment."""
    if freeze_services and service not in freeze_services:
        return False
    return (not freeze_environments or environment is None
            or environment in freeze_environments)


def freeze_spares(change_type: str, change_incident_id: object, freeze_source: str,
                  freeze_incident_id: object, *, fixes_open_incident: bool = False) -> bool:
    """The one rule for emergency changes and incident freezes (S4), the deployments gate's
    too: an emergency change that fixes an open incident of its service is not held by any
    incident freeze of that service, its own incident's or another major incident's, since
    emergency changes exist to restore service (the pass is recorded on its moves and on the
    gate's decision). ``fixes_open_incident``: the linked incident is known open on the
    change's service. Manual freezes still hold it (a manager forces it through)."""
    if change_type != "emergency" or change_incident_id is None or freeze_source != "incident":
        return False
    return fixes_open_incident or change_incident_id == freeze_incident_id


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
