"""The deployments HTTP API and DORA."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import or_, select

from deployments.config import Settings
from deployments.deployment import DeploymentTransitionRequest, deployments, public
from deployments.dora_facts import dora_report
from deployments.gate_polls import gate_answer
from deployments.lifecycle import record_deployment, transition
from deployments.models import (
    Deployment,
    DeploymentCreate,
    DeploymentPublic,
    DeploymentsPage,
    DoraReport,
    Environment,
    GateAnswer,
)
from deployments.pipeline_scope import check_pipeline_scope
from deployments.projections import services_of_team
from tandem.app import Session
from tandem.auth import Pipeline, Reader
from tandem.db import utcnow
from tandem.dora import WINDOW_PATTERN, parse_window
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import CURSOR_EXAMPLE, page
from tandem.vocabulary import NAME_PATTERN

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])
#: The ``{ref}`` of a deployment's path.
DeploymentRef = Annotated[str, Path(description="The deployment's id or number (DEP0000007).",
                                    examples=["DEP0000007"])]
dora_router = APIRouter(prefix="/api/v1/dora", tags=["dora"])


@router.post("", status_code=201, response_model=DeploymentPublic)
async def create_deployment(body: DeploymentCreate, session: Session, settings: Settings,
                            actor: Pipeline, idem: Idempotency) -> JSONBody:
    """Record a deployment and decide its gate (201 with ``gate``); retries replay."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    await check_pipeline_scope(session, actor, body.service, body.environment.value,
                               rule="create")
    snapshot = await record_deployment(session, settings, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/deployments/{snapshot.id}")


@router.get("", response_model=DeploymentsPage)
async def list_deployments(
    session: Session, _: Reader,
    status: Annotated[str | None, Query(
        description="Only deployments in this state.", examples=["failed"])] = None,
    service_name: Annotated[str | None, Query(
        alias="service", description="Only this service's deployments.",
        examples=["checkout"])] = None,
    environment: Annotated[Environment | None, Query(
        description="Only deployments to this environment.", examples=["production"])] = None,
    change_id: Annotated[uuid.UUID | None, Query(
        description="Only the deployments that carry this change (or were gated by it).",
        examples=["7c1d9e4a-2b3f-4a5c-8d6e-9f0a1b2c3d4e"])
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many per page.",
                                examples=[50])] = 50,
    cursor: Annotated[str | None, Query(
        description="The next_cursor of the page before; absent for the first page.",
        examples=[CURSOR_EXAMPLE])] = None,
) -> DeploymentsPage:
    stmt = select(Deployment)
    if status:
        stmt = stmt.where(Deployment.status == status)
    if service_name:
        stmt = stmt.where(Deployment.service == service_name)
    if environment:
        stmt = stmt.where(Deployment.environment == environment.value)
    if change_id:
        stmt = stmt.where(or_(Deployment.change_id == change_id,
                              Deployment.gate_change_id == change_id))
    items, next_cursor = await page(session, stmt, Deployment, limit=limit, cursor=cursor)
    return DeploymentsPage(items=[public(d) for d in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=DeploymentPublic)
async def get_deployment(ref: DeploymentRef, session: Session, _: Reader) -> JSONBody:
    return resource_response(public(await deployments.get(session, ref)))


@router.post("/{ref}/transitions", response_model=DeploymentPublic)
async def transition_deployment(ref: DeploymentRef, body: DeploymentTransitionRequest,
                                request: Request,
                                session: Session, actor: Pipeline) -> JSONBody:
    """Move a deployment (``in_progress`` needs an allowed gate); ``If-Match`` honoured."""
    dep = await deployments.get(session, ref, for_update=True)
    await check_pipeline_scope(session, actor, dep.service, dep.environment, rule="move")
    check_if_match(request, dep.version)
    return resource_response(await transition(session, dep, body.to, body.reason,
                                              actor=actor.sub))


@router.get("/{ref}/gate", response_model=GateAnswer)
async def get_gate(ref: DeploymentRef, request: Request, settings: Settings, actor: Reader,
                   wait: Annotated[float, Query(
                       ge=0, le=60,
                       description="Seconds to hold the answer while the gate is awaiting "
                                   "(0 to 60): it comes as soon as the change is approved, "
                                   "rejected or canceled, or when the time is up.",
                       examples=[30])] = 0) -> GateAnswer:
    """The deployment's gate decision, with the reasons for it. With ``wait``, a pipeline
    polls without hammering: an awaiting gate answers the moment its change is decided, or
    after ``wait`` seconds with ``awaiting`` still."""
    return await gate_answer(request.app.state.db, request.app.state.gate_signals, settings,
                             ref, wait=wait, asker=actor)


@dora_router.get("", response_model=DoraReport)
async def get_dora(
    session: Session, settings: Settings, _: Reader,
    service_name: Annotated[str | None, Query(
        alias="service", max_length=100, description="Only this service's deployments; unset, "
                                                     "every service's.",
        examples=["checkout"])] = None,
    environment: Annotated[Environment, Query(
        description="The environment measured.", examples=["production"])
    ] = Environment.production,
    window: Annotated[str, Query(
        max_length=5, pattern=WINDOW_PATTERN,
        description="How far back from now: a number of hours, days or weeks.",
        examples=["30d", "12h", "4w"])] = "30d",
    team: Annotated[str | None, Query(max_length=100, pattern=NAME_PATTERN,
                                      description="Only the services this team owns or runs "
                                                  "(as the catalog says).",
                                      examples=["payments"])] = None,
) -> DoraReport:
    """DORA for one service (or all, or a team's) and environment over the last ``window``
    (``30d``)."""
    span = parse_window(window)  # the pattern above admits only windows it reads
    services = await services_of_team(session, team) if team else None
    return await dora_report(session, service=service_name, environment=environment,
                             window=window, span=span, until=utcnow(),
                             buckets=settings.dora_buckets, team=team, services=services)
