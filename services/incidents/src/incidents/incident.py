"""The incident aggregate on the shared core, and its writes: open, edit, move.

``incidents`` is the aggregate (``INC`` numbers, snapshots, events); every event about an
incident goes through ``incidents.record``, whose ``recorded`` hook appends it to the
incident's timeline in the same transaction. Callers read the incident they change with
``incidents.get(..., for_update=True)`` (the locking policy).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events, timeline
from incidents.assignment import group_for
from incidents.config import IncidentsSettings
from incidents.errors import IncidentFinal, ManagerDecision, MitigationOutOfRange
from incidents.models import Incident
from incidents.policy_store import load_policy
from incidents.reviews import open_review
from incidents.rules.lifecycle import (
    FINAL_STATES,
    LIFECYCLE,
    OPEN_STATES,
    apply_move,
    check_move,
)
from incidents.rules.policy import (
    derive_priority,
    follow_resolution_pause,
    is_major,
    pauses_resolution,
    set_due_times,
)
from incidents.rules.reviews import needs_review
from incidents.schemas import (
    IncidentCreate,
    IncidentPublic,
    IncidentUpdate,
    Source,
    TransitionRequest,
)
from incidents.suspects import find_suspects, window_seconds
from tandem.aggregate import Aggregate
from tandem.auth import MANAGE, Actor
from tandem.db import utcnow
from tandem.events import CloudEvent

#: The actor of facts the service records by itself (SLA breaches).
SYSTEM_ACTOR = "tandem-incidents"


def public(incident: Incident) -> IncidentPublic:
    """The incident as the API returns it and every event carries it."""
    return IncidentPublic.model_validate(
        {**incident.model_dump(), "allowed_transitions": LIFECYCLE.allowed(incident.status)}
    )


class IncidentAggregate(Aggregate[Incident, IncidentPublic]):
    """Incidents on the core: the snapshot is :func:`public`; each event joins the timeline."""

    async def snapshot(self, session: AsyncSession, row: Incident) -> IncidentPublic:
        return public(row)

    async def recorded(self, session: AsyncSession, row: Incident, event: CloudEvent) -> None:
        await timeline.append(session, row.id, event)


incidents = IncidentAggregate(Incident, name="incident", service="incidents",
                              number_prefix="INC")


async def open_incident(
    session: AsyncSession, settings: IncidentsSettings, body: IncidentCreate, *, actor: str,
    source: Source = Source.manual, dedup_key: str | None = None,
    opened_by_deployment_id: uuid.UUID | None = None,
    cause_deployment_id: uuid.UUID | None = None, cause_change_id: uuid.UUID | None = None,
    priority: int | None = None,
) -> tuple[Incident, IncidentPublic]:
    """Open an incident (priority from the policy's matrix, SLA due times; with no assignment
    group, its service's operations team) and look for suspects: the ``created`` event, then
    ``suspects_found`` when there are any; ``priority`` given by a rule (S2's by tier) is kept
    as an override of the matrix. Returns the new row and its snapshot after the last event."""
    policy = await load_policy(session, settings)
    overridden = priority is not None
    if priority is None:
        priority = derive_priority(policy.priority_matrix, body.impact, body.urgency)
    now = utcnow()
    fields = body.model_dump(mode="json")
    fields["assignment_group"] = await group_for(session, body.service, body.assignment_group)
    incident = await incidents.new(
        session, now=now, **fields,
        priority=priority, priority_overridden=overridden, major=is_major(priority, False),
        status="new",
        source=source.value, dedup_key=dedup_key, alert_count=1 if dedup_key else 0,
        opened_by_deployment_id=opened_by_deployment_id,
        cause_deployment_id=cause_deployment_id, cause_change_id=cause_change_id,
        cause_status="declared" if cause_deployment_id or cause_change_id else None,
        reported_by=actor, reported_at=now,
    )
    set_due_times(incident, policy.sla_targets)
    snapshot = await incidents.record(session, incident, events.IncidentCreated, actor=actor,
                                      now=now)
    suspects = await find_suspects(session, settings, incident)
    if suspects:
        snapshot = await incidents.record(
            session, incident, events.IncidentSuspectsFound, actor=actor, now=now,
            window_seconds=window_seconds(settings), suspects=suspects)
    return incident, snapshot


def _snapshot_fields(incident: Incident) -> dict[str, Any]:
    data = public(incident).model_dump(mode="json")
    for volatile in ("version", "updated_at", "allowed_transitions"):
        data.pop(volatile)
    return data


#: Fields a PATCH sets as given (priority, major and mitigated_at have rules of their own).
_PLAIN_FIELDS = ("title", "description", "service", "environment", "impact", "urgency",
                 "assignment_group", "assignee")


async def edit_incident(session: AsyncSession, settings: IncidentsSettings, incident: Incident,
                        body: IncidentUpdate, *, actor: Actor) -> IncidentPublic:
    """Apply a PATCH to ``incident`` (read for update); ``updated`` carries
    ``{field: [old, new]}``. No change, no event."""
    given = body.model_fields_set
    if {"priority", "major"} & given and actor.role not in MANAGE:
        raise ManagerDecision
    if incident.status in FINAL_STATES:
        raise IncidentFinal(f"A {incident.status} incident cannot be edited.")
    policy = await load_policy(session, settings)
    before = _snapshot_fields(incident)
    now = utcnow()
    for name in _PLAIN_FIELDS:
        if name in given:
            value = getattr(body, name)
            setattr(incident, name, value.value if hasattr(value, "value") else value)
    if "mitigated_at" in given:
        at = body.mitigated_at
        if at is not None and (at > now + timedelta(minutes=1) or at < incident.reported_at):
            raise MitigationOutOfRange
        incident.mitigated_at = at
    if "priority" in given:
        incident.priority_overridden = body.priority is not None
        if body.priority is not None:
            incident.priority = body.priority
    # Re-derived only when its inputs are edited: a policy change never moves old incidents.
    if not incident.priority_overridden and {"impact", "urgency", "priority"} & given:
        incident.priority = derive_priority(policy.priority_matrix, incident.impact,
                                            incident.urgency)
    if "major" in given:
        incident.major_declared = bool(body.major)
    incident.major = is_major(incident.priority, incident.major_declared)
    if incident.priority != before["priority"]:
        set_due_times(incident, policy.sla_targets)
    after = _snapshot_fields(incident)
    changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
    if not changes:
        return public(incident)
    return await incidents.record(session, incident, events.IncidentUpdated, actor=actor.sub,
                                  now=now, changes=changes)


async def raise_priority(session: AsyncSession, settings: IncidentsSettings,
                         incident: Incident, priority: int, *, actor: str) -> bool:
    """Raise an open incident (read for update) to ``priority`` when that is higher (a lower
    number), with its SLA due times; an ``updated`` event. False when it already was."""
    if incident.status not in OPEN_STATES or incident.priority <= priority:
        return False
    policy = await load_policy(session, settings)
    before = _snapshot_fields(incident)
    incident.priority, incident.priority_overridden = priority, True
    incident.major = is_major(priority, incident.major_declared)
    set_due_times(incident, policy.sla_targets)
    after = _snapshot_fields(incident)
    await incidents.record(session, incident, events.IncidentUpdated, actor=actor,
                           changes={k: (before[k], after[k]) for k in after
                                    if before[k] != after[k]})
    return True


async def move_incident(session: AsyncSession, incident: Incident, body: TransitionRequest, *,
                        actor: str,
                        pausing_hold_reasons: frozenset[str] = frozenset(),
                        review_due_working_days: int = 5) -> IncidentPublic:
    """Move ``incident`` (read for update) along its lifecycle, with each state's facts; the
    resolution SLA pauses while it is resolved or on hold for one of
    ``pausing_hold_reasons``, and its due time moves on when it resumes. A major incident
    resolved gets its post-incident review, due ``review_due_working_days`` later."""
    to = body.to.value
    check_move(incident.status, to, on_hold_reason=body.on_hold_reason,
               resolution_code=body.resolution_code, resolution_notes=body.resolution_notes)
    before = incident.status
    now = utcnow()
    apply_move(incident, to, on_hold_reason=body.on_hold_reason,
               resolution_code=body.resolution_code, resolution_notes=body.resolution_notes,
               now=now)
    if to not in FINAL_STATES:
        follow_resolution_pause(incident, now=now, paused=pauses_resolution(
            incident.status, incident.on_hold_reason, pausing_hold_reasons))
    snapshot = await incidents.record(session, incident, events.IncidentTransitioned,
                                      actor=actor, now=now, from_=before, to=to,
                                      reason=body.reason)
    if needs_review(major=incident.major, to=to):
        await open_review(session, incident, due_working_days=review_due_working_days,
                          actor=actor)
    return snapshot


async def assign_unassigned(session: AsyncSession, service: str, group: str, *,
                            actor: str) -> int:
    """Give ``group`` the open incidents of ``service`` that nobody is assigned to (read under
    the write lock, in id order), each with its ``updated`` event; returns how many."""
    rows = (await session.scalars(incidents.locked(select(Incident).where(
        Incident.service == service, Incident.assignment_group.is_(None),  # type: ignore[union-attr]
        Incident.status.in_(OPEN_STATES)).order_by(Incident.id)))).all()  # type: ignore[attr-defined]
    now = utcnow()
    for incident in rows:
        incident.assignment_group = group
        await incidents.record(session, incident, events.IncidentUpdated, actor=actor, now=now,
                               changes={"assignment_group": (None, group)})
    return len(rows)
