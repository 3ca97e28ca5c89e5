"""Incident rules with I/O: each change is written with its event in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events
from incidents.config import IncidentsSettings
from incidents.events import EVENT_DATA
from incidents.models import (
    ChangeView,
    DeploymentView,
    Incident,
    IncidentCreate,
    IncidentEvent,
    IncidentPolicy,
    IncidentPublic,
    IncidentUpdate,
    Note,
    PolicyPublic,
    PolicyUpdate,
    SlaTarget,
    Source,
    Suspect,
    TransitionRequest,
)
from incidents.policy import (
    LIFECYCLE,
    OPEN_STATES,
    SlaTargets,
    derive_priority,
    is_major,
    sla_due,
)
from tandem.auth import MANAGE, Actor
from tandem.db import utcnow
from tandem.events import new_event
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.problems import Problem, not_found
from tandem.settings import PlatformSettings

_EVENT_TYPES = {model: type_ for type_, model in EVENT_DATA.items()}
#: The actor of facts the service records by itself (SLA breaches).
SYSTEM_ACTOR = "tandem-incidents"


def public(incident: Incident) -> IncidentPublic:
    return IncidentPublic.model_validate(
        {**incident.model_dump(), "allowed_transitions": LIFECYCLE.allowed(incident.status)}
    )


def record(session: AsyncSession, platform: PlatformSettings, incident: Incident,
           kind: type[BaseModel], *, actor: str, **facts: Any) -> None:
    """Write the event ``kind`` about ``incident`` (already at its new version) to the outbox
    and the incident's timeline, with data built from the event's documented model."""
    data = kind.model_validate({"incident": public(incident), **facts})
    event = new_event(
        service="incidents", type=_EVENT_TYPES[kind], subject=incident.id,
        sequence=incident.version, actor=actor,
        data=data.model_dump(mode="json", by_alias=True),
    )
    add_event(session, topic=platform.topic("incidents"), event=event)
    session.add(IncidentEvent(id=event.id, incident_id=incident.id, sequence=event.sequence,
                              type=event.type, time=event.time, actor=actor, data=event.data))


def bump(incident: Incident, now: datetime | None = None) -> None:
    """Advance the incident's version: every event about it gets the next one."""
    incident.version += 1
    incident.updated_at = now or utcnow()


# ------------------------------------------------------------------------------ policy

class Policy(BaseModel):
    priority_matrix: list[list[int]]
    sla_targets: dict[int, tuple[int | None, int | None]]
    version: int
    updated_at: datetime | None
    updated_by: str | None

    def public(self) -> PolicyPublic:
        return PolicyPublic(
            priority_matrix=self.priority_matrix,
            sla_targets={str(p): SlaTarget(response_seconds=r, resolution_seconds=s)
                         for p, (r, s) in sorted(self.sla_targets.items())},
            version=self.version, updated_at=self.updated_at, updated_by=self.updated_by,
        )


async def load_policy(session: AsyncSession, settings: IncidentsSettings) -> Policy:
    """The owner's stored policy, else the one the settings seed."""
    row = await session.get(IncidentPolicy, 1)
    if row is None:
        return Policy(priority_matrix=settings.priority_matrix,
                      sla_targets=settings.sla_target_seconds(), version=0,
                      updated_at=None, updated_by=None)
    targets = {int(p): (v[0], v[1]) for p, v in row.sla_targets.items()}
    return Policy(priority_matrix=row.priority_matrix, sla_targets=targets, version=row.version,
                  updated_at=row.updated_at, updated_by=row.updated_by)


async def update_policy(session: AsyncSession, settings: IncidentsSettings, body: PolicyUpdate,
                        *, actor: str) -> Policy:
    """Store the owner's edit over the current policy; applies to incidents from now on."""
    current = await load_policy(session, settings)
    matrix = body.priority_matrix if body.priority_matrix is not None else current.priority_matrix
    targets = dict(current.sla_targets)
    for priority, target in (body.sla_targets or {}).items():
        targets[int(priority)] = (target.response_seconds, target.resolution_seconds)
    stored = {str(p): [r, s] for p, (r, s) in sorted(targets.items())}
    row = await session.get(IncidentPolicy, 1)
    now = utcnow()
    if row is None:
        row = IncidentPolicy(id=1, priority_matrix=matrix, sla_targets=stored, version=1,
                             updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.priority_matrix, row.sla_targets = matrix, stored
        row.version += 1
        row.updated_at, row.updated_by = now, actor
    await session.flush()
    return await load_policy(session, settings)


def _set_due_times(incident: Incident, targets: SlaTargets) -> None:
    """(Re)compute SLA due times from reported_at for the targets not yet met or breached."""
    response, resolution = sla_due(incident.reported_at, incident.priority, targets)
    if incident.acknowledged_at is None and incident.response_breached_at is None:
        incident.response_due_at = response
    if incident.resolved_at is None and incident.resolution_breached_at is None:
        incident.resolution_due_at = resolution


# ---------------------------------------------------------------------------- incidents

async def create_incident(
    session: AsyncSession, platform: PlatformSettings, settings: IncidentsSettings,
    body: IncidentCreate, *, actor: str, source: Source = Source.manual,
    dedup_key: str | None = None, opened_by_deployment_id: uuid.UUID | None = None,
    cause_deployment_id: uuid.UUID | None = None, cause_change_id: uuid.UUID | None = None,
) -> Incident:
    """Open an incident (priority from the policy's matrix, SLA due times) and look for
    suspects: the created event, then ``suspects_found`` when there are any."""
    policy = await load_policy(session, settings)
    priority = derive_priority(policy.priority_matrix, body.impact, body.urgency)
    now = utcnow()
    incident = Incident(
        number=await next_number(session, "INC"), **body.model_dump(mode="json"),
        priority=priority, major=is_major(priority, False), status="new",
        source=source.value, dedup_key=dedup_key, alert_count=1 if dedup_key else 0,
        opened_by_deployment_id=opened_by_deployment_id,
        cause_deployment_id=cause_deployment_id, cause_change_id=cause_change_id,
        cause_status="declared" if cause_deployment_id or cause_change_id else None,
        reported_by=actor, reported_at=now, created_at=now, updated_at=now,
    )
    _set_due_times(incident, policy.sla_targets)
    session.add(incident)
    record(session, platform, incident, events.IncidentCreated, actor=actor)
    suspects = await find_suspects(session, settings, incident)
    if suspects:
        bump(incident, now)
        record(session, platform, incident, events.IncidentSuspectsFound, actor=actor,
               window_seconds=int(settings.suspect_window_delta.total_seconds()),
               suspects=suspects)
    return incident


async def get_incident(session: AsyncSession, ref: str) -> Incident:
    """By id (UUID) or human number (``INC0000042``); 404 otherwise."""
    try:
        clause = Incident.id == uuid.UUID(ref)
    except ValueError:
        if len(ref) > 16 or "\x00" in ref:
            raise not_found("incident", ref[:40]) from None
        clause = Incident.number == ref.upper()
    incident = (await session.scalars(select(Incident).where(clause))).first()
    if incident is None:
        raise not_found("incident", ref)
    return incident


def _snapshot_fields(incident: Incident) -> dict[str, Any]:
    data = public(incident).model_dump(mode="json")
    for volatile in ("version", "updated_at", "allowed_transitions"):
        data.pop(volatile)
    return data


def _field_problem(status: int, field: str, message: str) -> Problem:
    return Problem(status, f"{field}: {message}", type_="urn:tandem:problem:validation",
                   errors=[{"field": field, "message": message}])


async def update_incident(session: AsyncSession, platform: PlatformSettings,
                          settings: IncidentsSettings, incident: Incident, body: IncidentUpdate,
                          *, actor: Actor) -> Incident:
    """Apply a PATCH; ``updated`` carries ``{field: [old, new]}``. No change, no event."""
    given = body.model_fields_set
    if {"priority", "major"} & given and actor.role not in MANAGE:
        raise Problem(403, "Only a manager may override the priority or declare a major "
                           "incident.", type_="urn:tandem:problem:forbidden")
    if incident.status in ("closed", "canceled"):
        raise Problem(409, f"A {incident.status} incident cannot be edited.",
                      type_="urn:tandem:problem:final-state", allowed=[])
    policy = await load_policy(session, settings)
    before = _snapshot_fields(incident)
    now = utcnow()
    for name in ("title", "description", "service", "environment", "impact", "urgency",
                 "assignment_group", "assignee"):
        if name in given:
            value = getattr(body, name)
            setattr(incident, name, value.value if hasattr(value, "value") else value)
    if "mitigated_at" in given:
        at = body.mitigated_at
        if at is not None and (at > now + timedelta(minutes=1) or at < incident.reported_at):
            raise _field_problem(422, "mitigated_at", "must lie between reported_at and now")
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
        _set_due_times(incident, policy.sla_targets)
    after = _snapshot_fields(incident)
    changes = {k: (before[k], after[k]) for k in after if before[k] != after[k]}
    if changes:
        bump(incident, now)
        record(session, platform, incident, events.IncidentUpdated, actor=actor.sub,
               changes=changes)
    return incident


async def transition(session: AsyncSession, platform: PlatformSettings, incident: Incident,
                     body: TransitionRequest, *, actor: str) -> Incident:
    """Move the incident along its lifecycle, with each state's own facts and timestamps."""
    to = body.to.value
    LIFECYCLE.check(incident.status, to)
    if body.on_hold_reason is not None and to != "on_hold":
        raise _field_problem(422, "on_hold_reason", "only a move to on_hold takes it")
    if to != "resolved":
        for name in ("resolution_code", "resolution_notes"):
            if getattr(body, name) is not None:
                raise _field_problem(422, name, "only a move to resolved takes it")
    if to == "on_hold" and body.on_hold_reason is None:
        raise _field_problem(422, "on_hold_reason", "a move to on_hold needs one of "
                             "awaiting_caller, awaiting_change, awaiting_problem, "
                             "awaiting_vendor")
    if to == "resolved" and (body.resolution_code is None or body.resolution_notes is None):
        missing = "resolution_code" if body.resolution_code is None else "resolution_notes"
        raise _field_problem(422, missing, "a move to resolved needs resolution_code and "
                             "resolution_notes")
    apply_transition(incident, to, on_hold_reason=body.on_hold_reason,
                     resolution_code=body.resolution_code,
                     resolution_notes=body.resolution_notes)
    before = incident.status
    incident.status = to
    bump(incident)
    record(session, platform, incident, events.IncidentTransitioned, actor=actor,
           **{"from": before, "to": to, "reason": body.reason})
    return incident


def apply_transition(incident: Incident, to: str, *, on_hold_reason: Any = None,
                     resolution_code: Any = None, resolution_notes: str | None = None,
                     now: datetime | None = None) -> None:
    """The facts a move sets (timestamps, reasons, the reopen count); status is the caller's."""
    now = now or utcnow()
    if incident.status == "resolved" and to == "in_progress":
        incident.reopen_count += 1
        incident.resolved_at = None
        incident.resolution_code = incident.resolution_notes = None
    if to in ("acknowledged", "in_progress") and incident.acknowledged_at is None:
        # The first acknowledgement, explicit or by starting work, is what MTTA measures.
        incident.acknowledged_at = now
    incident.on_hold_reason = on_hold_reason.value if to == "on_hold" else None
    if to == "resolved":
        incident.resolved_at = now
        incident.mitigated_at = incident.mitigated_at or now
        incident.resolution_code = resolution_code.value if resolution_code else None
        incident.resolution_notes = resolution_notes
    if to in ("closed", "canceled"):
        incident.closed_at = now


async def add_note(session: AsyncSession, platform: PlatformSettings, incident: Incident,
                   text: str, *, actor: str, kind: str = "note",
                   details: dict[str, Any] | None = None) -> Note:
    """Annotate the incident: notes are events on its timeline."""
    now = utcnow()
    note = Note(id=uuid.uuid4(), incident_id=incident.id, kind=kind,  # type: ignore[arg-type]
                text=text, author=actor, created_at=now, details=details)
    bump(incident, now)
    record(session, platform, incident, events.IncidentAnnotated, actor=actor, note=note)
    return note


async def timeline(session: AsyncSession, incident: Incident, *, after: int,
                   limit: int) -> list[IncidentEvent]:
    rows = await session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id, IncidentEvent.sequence > after)
        .order_by(IncidentEvent.sequence).limit(limit))  # type: ignore[arg-type]
    return list(rows.all())


async def notes(session: AsyncSession, incident: Incident) -> list[Note]:
    rows = await session.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident.id,
               IncidentEvent.type == "tandem.incident.annotated")
        .order_by(IncidentEvent.sequence))  # type: ignore[arg-type]
    return [Note.model_validate(row.data["note"]) for row in rows.all()]


# ---------------------------------------------------------------------- suspects, causes

#: Deployment states that mean it ran (requested and canceled ones never touched production).
RAN = ("in_progress", "succeeded", "failed", "rolled_back")


async def find_suspects(session: AsyncSession, settings: IncidentsSettings,
                        incident: Incident) -> list[Suspect]:
    """S3: the service's production deployments and implemented changes within the suspect
    window before the incident was reported, newest first."""
    start = incident.reported_at - settings.suspect_window_delta
    end = incident.reported_at
    # The projections are written by statements, not the ORM: read them afresh.
    fresh = {"populate_existing": True}
    deployments = await session.scalars(select(DeploymentView).execution_options(**fresh).where(
        DeploymentView.service == incident.service,
        DeploymentView.environment == "production",
        DeploymentView.status.in_(RAN),  # type: ignore[attr-defined]
        DeploymentView.deployed_at >= start,  # type: ignore[operator]
        DeploymentView.deployed_at <= end,  # type: ignore[operator]
    ))
    changes = await session.scalars(select(ChangeView).execution_options(**fresh).where(
        ChangeView.service == incident.service,
        ChangeView.environment == "production",
        ChangeView.implemented_at >= start,  # type: ignore[operator]
        ChangeView.implemented_at <= end,  # type: ignore[operator]
    ))
    found = [Suspect(kind="deployment", id=d.id, number=d.number, service=d.service,
                     environment=d.environment, status=d.status, at=d.deployed_at,
                     version=d.version, change_id=d.change_id)
             for d in deployments.all() if d.deployed_at is not None]
    found += [Suspect(kind="change", id=c.id, number=c.number, service=c.service,
                      environment=c.environment, status=c.status, at=c.implemented_at,
                      type=c.type, title=c.title)
              for c in changes.all() if c.implemented_at is not None]
    return sorted(found, key=lambda s: (s.at, str(s.id)), reverse=True)


async def confirm_cause(session: AsyncSession, platform: PlatformSettings, incident: Incident,
                        *, deployment_id: uuid.UUID | None, change_id: uuid.UUID | None,
                        actor: str) -> Incident:
    """A manager confirms the cause; ``cause_confirmed`` tells deployments and changes."""
    if incident.status == "canceled":
        raise Problem(409, "A canceled incident has no cause to confirm.",
                      type_="urn:tandem:problem:final-state", allowed=[])
    if deployment_id is not None and change_id is None:
        known = await session.get(DeploymentView, deployment_id)
        change_id = known.change_id if known is not None else None
    if (incident.cause_status == "confirmed" and incident.cause_deployment_id == deployment_id
            and incident.cause_change_id == change_id):
        return incident
    now = utcnow()
    incident.cause_deployment_id, incident.cause_change_id = deployment_id, change_id
    incident.cause_status = "confirmed"
    incident.cause_confirmed_at, incident.cause_confirmed_by = now, actor
    bump(incident, now)
    record(session, platform, incident, events.IncidentCauseConfirmed, actor=actor,
           deployment_id=deployment_id, change_id=change_id, priority=incident.priority)
    return incident


async def open_incident_for_dedup_key(session: AsyncSession, service: str,
                                      dedup_key: str) -> Incident | None:
    return (await session.scalars(select(Incident).where(
        Incident.service == service, Incident.dedup_key == dedup_key,
        Incident.status.in_(OPEN_STATES),  # type: ignore[attr-defined]
    ))).first()
