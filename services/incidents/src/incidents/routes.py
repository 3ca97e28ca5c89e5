"""The incidents HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from incidents import service
from incidents.config import IncidentsSettings
from incidents.models import (
    SERVICE_PATTERN,
    CauseRequest,
    Environment,
    Incident,
    IncidentCreate,
    IncidentPublic,
    IncidentsPage,
    IncidentUpdate,
    Metrics,
    Note,
    NoteCreate,
    NotesPage,
    PolicyPublic,
    PolicyUpdate,
    Source,
    Suspects,
    Timeline,
    TimelineEntry,
    TransitionRequest,
)
from incidents.policy import Status
from incidents.stats import summarize
from tandem.app import Runtime, Session
from tandem.auth import Manager, Owner, Reader, Worker
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import page
from tandem.problems import Problem

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
#: Query text without NUL characters (which PostgreSQL cannot compare).
PLAIN_TEXT = r"^[^\x00]*$"
policy_router = APIRouter(prefix="/api/v1/incident-policy", tags=["policy"])
metrics_router = APIRouter(prefix="/api/v1/incident-metrics", tags=["metrics"])


def settings_of(request: Request) -> IncidentsSettings:
    return request.app.state.incidents_settings  # type: ignore[no-any-return]


@router.post("", status_code=201, response_model=IncidentPublic)
async def create_incident(body: IncidentCreate, request: Request, session: Session, rt: Runtime,
                          actor: Worker, idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    incident = await service.create_incident(session, rt.platform, settings_of(request), body,
                                             actor=actor.sub)
    return idem.respond(session, service.public(incident),
                        location=f"/api/v1/incidents/{incident.id}")


@router.get("", response_model=IncidentsPage)
async def list_incidents(
    session: Session, _: Reader,
    status: Status | None = None,
    service_name: Annotated[str | None, Query(alias="service", max_length=100,
                                              pattern=SERVICE_PATTERN)] = None,
    environment: Environment | None = None,
    priority: Annotated[int | None, Query(ge=1, le=5)] = None,
    major: bool | None = None,
    assignment_group: Annotated[str | None, Query(max_length=100, pattern=PLAIN_TEXT)] = None,
    assignee: Annotated[str | None, Query(max_length=255, pattern=PLAIN_TEXT)] = None,
    source: Source | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> IncidentsPage:
    stmt = select(Incident)
    filters = {"status": status, "service": service_name, "environment": environment,
               "priority": priority, "major": major, "assignment_group": assignment_group,
               "assignee": assignee, "source": source}
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Incident, name) == getattr(value, "value", value))
    items, next_cursor = await page(session, stmt, Incident, limit=limit, cursor=cursor)
    return IncidentsPage(items=[service.public(i) for i in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=IncidentPublic)
async def get_incident(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(service.public(await service.get_incident(session, ref)))


@router.patch("/{ref}", response_model=IncidentPublic)
async def update_incident(ref: str, body: IncidentUpdate, request: Request, session: Session,
                          rt: Runtime, actor: Worker) -> JSONBody:
    incident = await service.get_incident(session, ref)
    check_if_match(request, incident.version)
    await service.update_incident(session, rt.platform, settings_of(request), incident, body,
                                  actor=actor)
    return resource_response(service.public(incident))


@router.post("/{ref}/transitions", response_model=IncidentPublic)
async def transition_incident(ref: str, body: TransitionRequest, request: Request,
                              session: Session, rt: Runtime, actor: Worker) -> JSONBody:
    incident = await service.get_incident(session, ref)
    check_if_match(request, incident.version)
    await service.transition(session, rt.platform, incident, body, actor=actor.sub)
    return resource_response(service.public(incident))


@router.post("/{ref}/notes", status_code=201, response_model=Note)
async def add_note(ref: str, body: NoteCreate, session: Session, rt: Runtime, actor: Worker,
                   idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    incident = await service.get_incident(session, ref)
    note = await service.add_note(session, rt.platform, incident, body.text, actor=actor.sub)
    return idem.respond(session, note,
                        location=f"/api/v1/incidents/{incident.id}/notes/{note.id}")


@router.get("/{ref}/notes", response_model=NotesPage)
async def list_notes(ref: str, session: Session, _: Reader) -> NotesPage:
    incident = await service.get_incident(session, ref)
    return NotesPage(items=await service.notes(session, incident))


@router.get("/{ref}/notes/{note_id}", response_model=Note)
async def get_note(ref: str, note_id: str, session: Session, _: Reader) -> Note:
    incident = await service.get_incident(session, ref)
    for note in await service.notes(session, incident):
        if str(note.id) == note_id:
            return note
    raise Problem(404, f"Incident {incident.number} has no note {note_id}.",
                  type_="urn:tandem:problem:not-found")


@router.get("/{ref}/timeline", response_model=Timeline)
async def get_timeline(
    ref: str, session: Session, _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 200,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> Timeline:
    """Every event about the incident, oldest first; ``next_cursor`` pages on."""
    incident = await service.get_incident(session, ref)
    after = 0
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) >= 2**31:
            raise Problem(400, "The cursor is not one this service issued.",
                          type_="urn:tandem:problem:bad-cursor")
        after = int(cursor)
    rows = await service.timeline(session, incident, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Timeline(
        items=[TimelineEntry(id=r.id, type=r.type, sequence=r.sequence, time=r.time,
                             actor=r.actor, data=r.data) for r in rows],
        next_cursor=str(rows[-1].sequence) if more else None,
    )


@router.get("/{ref}/suspects", response_model=Suspects)
async def get_suspects(ref: str, request: Request, session: Session, _: Reader) -> Suspects:
    """S3: deployments and implemented changes of the service shortly before, newest first."""
    settings = settings_of(request)
    incident = await service.get_incident(session, ref)
    return Suspects(incident_id=incident.id,
                    window_seconds=int(settings.suspect_window_delta.total_seconds()),
                    items=await service.find_suspects(session, settings, incident))


@router.post("/{ref}/cause", response_model=IncidentPublic)
async def confirm_cause(ref: str, body: CauseRequest, request: Request, session: Session,
                        rt: Runtime, actor: Manager) -> JSONBody:
    incident = await service.get_incident(session, ref)
    check_if_match(request, incident.version)
    await service.confirm_cause(session, rt.platform, incident, deployment_id=body.deployment_id,
                                change_id=body.change_id, actor=actor.sub)
    return resource_response(service.public(incident))


@policy_router.get("", response_model=PolicyPublic)
async def get_policy(request: Request, session: Session, _: Reader) -> PolicyPublic:
    """The priority matrix and SLA targets in force."""
    return (await service.load_policy(session, settings_of(request))).public()


@policy_router.patch("", response_model=PolicyPublic)
async def update_policy(body: PolicyUpdate, request: Request, session: Session,
                        actor: Owner) -> JSONBody:
    """An owner edits the matrix or SLA targets; new and re-prioritized incidents use them."""
    settings = settings_of(request)
    current = await service.load_policy(session, settings)
    check_if_match(request, current.version)
    updated = await service.update_policy(session, settings, body, actor=actor.sub)
    return resource_response(updated.public())


@metrics_router.get("", response_model=Metrics)
async def incident_metrics(
    session: Session, _: Reader,
    service_name: Annotated[str | None, Query(alias="service", max_length=100,
                                              pattern=SERVICE_PATTERN)] = None,
    environment: Environment | None = None,
    since: datetime | None = None,
) -> Metrics:
    """MTTA (reported -> first acknowledged) and MTTR (reported -> resolved), in seconds."""
    if since is not None and since.tzinfo is None:
        raise Problem(422, "since needs a time zone (RFC 3339, such as 2026-01-01T00:00:00Z).",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "since", "message": "needs a time zone"}])
    stmt = select(Incident.reported_at, Incident.acknowledged_at, Incident.resolved_at)
    if service_name:
        stmt = stmt.where(Incident.service == service_name)
    if environment:
        stmt = stmt.where(Incident.environment == environment.value)
    if since:
        stmt = stmt.where(Incident.reported_at >= since)  # type: ignore[operator]
    rows = (await session.execute(stmt)).all()
    return Metrics(
        service=service_name, environment=environment, since=since,
        mtta=summarize((a - r).total_seconds() for r, a, _ in rows if a is not None),
        mttr=summarize((s - r).total_seconds() for r, _, s in rows if s is not None),
    )
