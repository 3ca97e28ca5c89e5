"""The deployments HTTP API and DORA."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
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
from tandem.pagination import page

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])
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
        description="Only deployments to this environment.")] = None,
    change_id: Annotated[uuid.UUID | None, Query(
        description="Only the deployments that carry this change (or were gated by it).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many per page.")] = 50,
    cursor: Annotated[str | None, Query(
        description="The next_cursor of the page before; absent for the first page.")] = None,
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
async def get_deployment(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(public(await deployments.get(session, ref)))


@router.post("/{ref}/transitions", response_model=DeploymentPublic)
async def transition_deployment(ref: str, body: DeploymentTransitionRequest, request: Request,
                                session: Session, actor: Pipeline) -> JSONBody:
    """Move a deployment (``in_progress`` needs an allowed gate); ``If-Match`` honoured."""
    dep = await deployments.get(session, ref, for_update=True)
    await check_pipeline_scope(session, actor, dep.service, dep.environment, rule="move")
    check_if_match(request, dep.version)
    return resource_response(await transition(session, dep, body.to, body.reason,
                                              actor=actor.sub))


@router.get("/{ref}/gate", response_model=GateAnswer)
async def get_gate(ref: str, request: Request, settings: Settings, _: Reader,
                   wait: Annotated[float, Query(ge=0, le=60)] = 0) -> GateAnswer:
    """The gate; with ``?wait=N`` held up to N seconds until it leaves ``awaiting``, woken by
    the consumed change event that decided it (:mod:`deployments.gate_polls`)."""
    return await gate_answer(request.app.state.db, request.app.state.gate_signals, settings,
                             ref, wait=wait)


@dora_router.get("", response_model=DoraReport)
async def get_dora(
    session: Session, settings: Settings, _: Reader,
    service_name: Annotated[str | None, Query(alias="service", max_length=100)] = None,
    environment: Environment = Environment.production,
    window: Annotated[str, Query(
        max_length=5, pattern=WINDOW_PATTERN,
        description="How far back from now: a number of hours, days or weeks.",
        examples=["30d", "12h", "4w"])] = "30d",
    team: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9][a-z0-9._-]*$",
                                      description="Only the services this team owns or runs "
                                                  "(as the catalog says).")] = None,
) -> DoraReport:
    """DORA for one service (or all, or a team's) and environment over the last ``window``
    (``30d``)."""
    span = parse_window(window)  # the pattern above admits only windows it reads
    services = await services_of_team(session, team) if team else None
    return await dora_report(session, service=service_name, environment=environment,
                             window=window, span=span, until=utcnow(),
                             buckets=settings.dora_buckets, team=team, services=services)
