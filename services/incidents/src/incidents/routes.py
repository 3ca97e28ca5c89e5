"""The incidents HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from tandem.app import Runtime, Session
from tandem.auth import Reader, Worker
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import page

from incidents import service
from incidents.models import (
    Environment,
    Incident,
    IncidentCreate,
    IncidentPublic,
    IncidentsPage,
    TransitionRequest,
)

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"])


@router.post("", status_code=201, response_model=IncidentPublic)
async def create_incident(body: IncidentCreate, session: Session, rt: Runtime, actor: Worker,
                          idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    incident = await service.create_incident(session, rt.platform, body, actor=actor.sub)
    return idem.respond(session, service.public(incident),
                        location=f"/api/v1/incidents/{incident.id}")


@router.get("", response_model=IncidentsPage)
async def list_incidents(
    session: Session, _: Reader,
    status: str | None = None, service_name: Annotated[str | None, Query(alias="service")] = None,
    environment: Environment | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None,
) -> IncidentsPage:
    stmt = select(Incident)
    if status:
        stmt = stmt.where(Incident.status == status)
    if service_name:
        stmt = stmt.where(Incident.service == service_name)
    if environment:
        stmt = stmt.where(Incident.environment == environment.value)
    items, next_cursor = await page(session, stmt, Incident, limit=limit, cursor=cursor)
    return IncidentsPage(items=[service.public(i) for i in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=IncidentPublic)
async def get_incident(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(service.public(await service.get_incident(session, ref)))


@router.post("/{ref}/transitions", response_model=IncidentPublic)
async def transition_incident(ref: str, body: TransitionRequest, request: Request,
                              session: Session, rt: Runtime, actor: Worker) -> JSONBody:
    incident = await service.get_incident(session, ref)
    check_if_match(request, incident.version)
    await service.transition(session, rt.platform, incident, body.to, body.reason, actor=actor.sub)
    return resource_response(service.public(incident))
