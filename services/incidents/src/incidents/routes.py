"""The incidents HTTP API: incidents (with notes, timeline, suspects, cause), the policy and
the metrics. Each route reads what it changes under the locking policy and leaves the rules
to the modules named after their nouns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from incidents import causes, notes, policy_store
from incidents.config import Settings
from incidents.incident import edit_incident, incidents, move_incident, open_incident, public
from incidents.models import Incident
from incidents.projections import services_of_team
from incidents.rules.lifecycle import Status
from incidents.rules.stats import summarize
from incidents.schemas import (
    CauseRequest,
    Environment,
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
from incidents.suspects import find_suspects, window_seconds
from incidents.timeline import entries
from tandem.app import Session
from tandem.auth import Manager, Owner, Reader, Worker
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.inputs import Moment
from tandem.pagination import CURSOR_DESCRIPTION, CURSOR_EXAMPLE, LIMIT_DESCRIPTION, page
from tandem.problems import Problem
from tandem.vocabulary import NAME_PATTERN

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])
#: Query text without NUL characters (which PostgreSQL cannot compare).
PLAIN_TEXT = r"^[^\x00]*$"
policy_router = APIRouter(prefix="/api/v1/incident-policy", tags=["policy"])
#: The ``{ref}`` of an incident's path.
IncidentRef = Annotated[str, Path(description="The incident's id or number (INC0000042).",
                                  examples=["INC0000042"])]
metrics_router = APIRouter(prefix="/api/v1/incident-metrics", tags=["metrics"])


@router.post("", status_code=201, response_model=IncidentPublic)
async def create_incident(body: IncidentCreate, session: Session, settings: Settings,
                          actor: Worker, idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    incident, snapshot = await open_incident(session, settings, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/incidents/{incident.id}")


@router.get("", response_model=IncidentsPage)
async def list_incidents(
    session: Session, _: Reader,
    status: Annotated[Status | None, Query(
        description="Only incidents in this state.", examples=["acknowledged"])] = None,
    service_name: Annotated[str | None, Query(
        alias="service", max_length=100, pattern=NAME_PATTERN,
        description="Only incidents of this service.", examples=["checkout"])] = None,
    environment: Annotated[Environment | None, Query(
        description="Only incidents in this environment.", examples=["production"])] = None,
    priority: Annotated[int | None, Query(
        ge=1, le=5, description="Only incidents of this priority, 1 (P1) to 5 (P5).",
        examples=[1])] = None,
    major: Annotated[bool | None, Query(
        description="true: only major incidents; false: only the others.",
        examples=[True])] = None,
    assignment_group: Annotated[str | None, Query(
        max_length=100, pattern=PLAIN_TEXT, description="Only incidents assigned to this team.",
        examples=["payments-oncall"])] = None,
    assignee: Annotated[str | None, Query(
        max_length=255, pattern=PLAIN_TEXT, description="Only incidents assigned to this person.",
        examples=["alice"])] = None,
    source: Annotated[Source | None, Query(
        description="Only incidents opened this way (manual, monitor, deployment).",
        examples=["monitor"])] = None,
    limit: Annotated[int, Query(ge=1, le=200, description=LIMIT_DESCRIPTION,
                                examples=[50])] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description=CURSOR_DESCRIPTION,
                                        examples=[CURSOR_EXAMPLE])] = None,
) -> IncidentsPage:
    stmt = select(Incident)
    filters = {"status": status, "service": service_name, "environment": environment,
               "priority": priority, "major": major, "assignment_group": assignment_group,
               "assignee": assignee, "source": source}
    for name, value in filters.items():
        if value is not None:
            stmt = stmt.where(getattr(Incident, name) == getattr(value, "value", value))
    items, next_cursor = await page(session, stmt, Incident, limit=limit, cursor=cursor)
    return IncidentsPage(items=[public(i) for i in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=IncidentPublic)
async def get_incident(ref: IncidentRef, session: Session, _: Reader) -> JSONBody:
    return resource_response(public(await incidents.get(session, ref)))


@router.patch("/{ref}", response_model=IncidentPublic)
async def update_incident(ref: IncidentRef, body: IncidentUpdate, request: Request,
                          session: Session,
                          settings: Settings, actor: Worker) -> JSONBody:
    incident = await incidents.get(session, ref, for_update=True)
    check_if_match(request, incident.version)
    return resource_response(await edit_incident(session, settings, incident, body,
                                                 actor=actor))


@router.post("/{ref}/transitions", response_model=IncidentPublic)
async def transition_incident(ref: IncidentRef, body: TransitionRequest, request: Request,
                              session: Session, settings: Settings,
                              actor: Worker) -> JSONBody:
    incident = await incidents.get(session, ref, for_update=True)
    check_if_match(request, incident.version)
    return resource_response(await move_incident(
        session, incident, body, actor=actor.sub,
        pausing_hold_reasons=settings.sla_pausing_hold_reasons,
        review_due_working_days=settings.review_due_working_days))


@router.post("/{ref}/notes", status_code=201, response_model=Note)
async def add_note(ref: IncidentRef, body: NoteCreate, session: Session, actor: Worker,
                      idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    incident = await incidents.get(session, ref, for_update=True)
    note = await notes.add_note(session, incident, body.text, actor=actor.sub)
    return await idem.respond(session, note,
                              location=f"/api/v1/incidents/{incident.id}/notes/{note.id}")


@router.get("/{ref}/notes", response_model=NotesPage)
async def list_notes(ref: IncidentRef, session: Session, _: Reader) -> NotesPage:
    return NotesPage(items=await notes.notes_of(session, await incidents.get(session, ref)))


@router.get("/{ref}/notes/{note_id}", response_model=Note)
async def get_note(ref: IncidentRef, note_id: Annotated[str, Path(
                       description="The note's id.",
                       examples=["5d8e2f1a-3b4c-4d5e-8f6a-7b8c9d0e1f2a"])],
                   session: Session, _: Reader) -> Note:
    return await notes.note_of(session, await incidents.get(session, ref), note_id)


@router.get("/{ref}/timeline", response_model=Timeline)
async def get_timeline(
    ref: IncidentRef, session: Session, _: Reader,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many entries (1 to 200).",
                                examples=[200])] = 200,
    cursor: Annotated[str | None, Query(
        max_length=20, description="Where to go on: the `next_cursor` of the entries before; "
                                   "unset, from the first event.", examples=["200"])] = None,
) -> Timeline:
    """Every event about the incident, oldest first; ``next_cursor`` pages on."""
    incident = await incidents.get(session, ref)
    after = 0
    if cursor is not None:
        if not cursor.isdigit() or int(cursor) >= 2**31:
            raise Problem(400, "The cursor is not one this service issued.",
                          type_="urn:tandem:problem:bad-cursor")
        after = int(cursor)
    rows = await entries(session, incident.id, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Timeline(
        items=[TimelineEntry(id=r.id, type=r.type, sequence=r.sequence, time=r.time,
                             actor=r.actor, data=r.data) for r in rows],
        next_cursor=str(rows[-1].sequence) if more else None,
    )


@router.get("/{ref}/suspects", response_model=Suspects)
async def get_suspects(ref: IncidentRef, session: Session, settings: Settings,
                       _: Reader) -> Suspects:
    """The deployments and implemented changes of the incident's service shortly before it was
    reported, newest first: the likely causes."""
    incident = await incidents.get(session, ref)
    return Suspects(incident_id=incident.id, window_seconds=window_seconds(settings),
                    items=await find_suspects(session, settings, incident))


@router.post("/{ref}/cause", response_model=IncidentPublic)
async def confirm_cause(ref: IncidentRef, body: CauseRequest, request: Request, session: Session,
                     actor: Manager) -> JSONBody:
    incident = await incidents.get(session, ref, for_update=True)
    check_if_match(request, incident.version)
    return resource_response(await causes.confirm_cause(
        session, incident, deployment_id=body.deployment_id, change_id=body.change_id,
        actor=actor.sub))


@policy_router.get("", response_model=PolicyPublic)
async def get_policy(session: Session, settings: Settings, _: Reader) -> PolicyPublic:
    """The priority matrix and SLA targets in force."""
    return (await policy_store.load_policy(session, settings)).public()


@policy_router.patch("", response_model=PolicyPublic)
async def update_policy(body: PolicyUpdate, request: Request, session: Session,
                       settings: Settings, actor: Owner) -> JSONBody:
    """An owner edits the matrix or SLA targets; new and re-prioritized incidents use them."""
    current = await policy_store.load_policy(session, settings, for_update=True)
    check_if_match(request, current.version)
    updated = await policy_store.update_policy(session, settings, current, body, actor=actor.sub)
    return resource_response(updated.public())


@metrics_router.get("", response_model=Metrics)
async def incident_metrics(
    session: Session, _: Reader,
    service_name: Annotated[str | None, Query(
        alias="service", max_length=100, pattern=NAME_PATTERN,
        description="Only incidents of this service.", examples=["checkout"])] = None,
    environment: Annotated[Environment | None, Query(
        description="Only incidents in this environment.", examples=["production"])] = None,
    since: Annotated[Moment | None, Query(
        description="Only incidents reported at or after this time (RFC 3339 with its offset).",
        examples=["2026-11-01T00:00:00Z"])] = None,
    team: Annotated[str | None, Query(max_length=100, pattern=NAME_PATTERN,
                                      description="Only the services this team owns or runs "
                                                  "(as the catalog says).",
                                      examples=["payments"])] = None,
) -> Metrics:
    """MTTA (reported -> first acknowledged) and MTTR (reported -> resolved), in seconds."""
    stmt = select(Incident.reported_at, Incident.acknowledged_at, Incident.resolved_at)
    if service_name:
        stmt = stmt.where(Incident.service == service_name)
    if environment:
        stmt = stmt.where(Incident.environment == environment.value)
    if since:
        stmt = stmt.where(Incident.reported_at >= since)  # type: ignore[operator]
    services = None
    if team:
        services = await services_of_team(session, team)
        stmt = stmt.where(Incident.service.in_(services))  # type: ignore[attr-defined]
    rows = (await session.execute(stmt)).all()
    return Metrics(
        service=service_name, environment=environment, since=since, team=team,
        services=services,
        mtta=summarize((a - r).total_seconds() for r, a, _ in rows if a is not None),
        mttr=summarize((s - r).total_seconds() for r, _, s in rows if s is not None),
    )
