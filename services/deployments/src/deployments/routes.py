"""The deployments HTTP API and DORA."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from deployments import service
from deployments.config import DeploymentsSettings
from deployments.dora import parse_window
from deployments.gate import Decision
from deployments.models import (
    Deployment,
    DeploymentCreate,
    DeploymentPublic,
    DeploymentsPage,
    DoraReport,
    Environment,
    GatePublic,
)
from tandem.app import Runtime, Session
from tandem.auth import Pipeline, Reader
from tandem.db import utcnow
from tandem.http import Idempotency, IdempotentCreate, JSONBody, check_if_match
from tandem.pagination import page
from tandem.problems import Problem
from tandem.tables import IdempotencyRecord
from tandem.transitions import TransitionRequest

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])
dora_router = APIRouter(prefix="/api/v1/dora", tags=["dora"])


def settings_of(request: Request) -> DeploymentsSettings:
    return request.app.state.deployments_settings  # type: ignore[no-any-return]


def _respond(snapshot: DeploymentPublic, *, status: int = 200,
             location: str | None = None) -> JSONBody:
    """The deployment with ``ETag: "<revision>"`` (its ``version`` is the software's)."""
    headers = {"ETag": f'"{snapshot.revision}"'}
    if location:
        headers["Location"] = location
    return JSONBody(snapshot, status_code=status, headers=headers)


class RevisionTaggedCreate(IdempotentCreate):
    """The shared Idempotency-Key handling, with the ETag taken from ``revision``.

    The shared helpers tag a resource by its ``version``; a deployment's ``version`` is the
    deployed software's (any text, so not even a valid header value), hence this subclass.
    """

    async def replay(self, session: AsyncSession) -> JSONBody | None:
        if self.key is None:
            return None
        record = await session.get(IdempotencyRecord, (self.key, self.actor))
        if record is None:
            return None
        if record.fingerprint != self.fingerprint or record.route != self.route:
            raise Problem(422, "This Idempotency-Key was used with another request body.",
                          type_="urn:tandem:problem:idempotency-key-reused")
        headers = {"Idempotent-Replayed": "true"}
        if record.location:
            headers["Location"] = record.location
        if (revision := record.response.get("revision")) is not None:
            headers["ETag"] = f'"{revision}"'
        return JSONBody(record.response, status_code=record.status_code, headers=headers)

    def respond(self, session: AsyncSession, model: BaseModel, *, status: int = 201,
                location: str | None = None) -> JSONBody:
        assert isinstance(model, DeploymentPublic)
        if self.key is not None:
            session.add(IdempotencyRecord(**self._record(model, status, location)))
        return _respond(model, status=status, location=location)

    async def respond_now(self, session: AsyncSession, model: DeploymentPublic, *,
                          status: int = 201, location: str | None = None) -> JSONBody:
        """``respond``, the record inserted with one Core statement (the create's hot path)."""
        if self.key is not None:
            await session.execute(insert(IdempotencyRecord.__table__),  # type: ignore[arg-type]
                                  [self._record(model, status, location)])
        return _respond(model, status=status, location=location)

    def _record(self, model: DeploymentPublic, status: int,
                location: str | None) -> dict[str, Any]:
        return {"key": self.key, "actor": self.actor, "route": self.route,
                "fingerprint": self.fingerprint, "status_code": status,
                "response": model.model_dump(mode="json"), "location": location,
                "created_at": utcnow()}


async def revision_tagged(idem: Idempotency) -> RevisionTaggedCreate:
    return RevisionTaggedCreate(idem.key, idem.actor, idem.route, idem.fingerprint)


DeploymentIdempotency = Annotated[RevisionTaggedCreate, Depends(revision_tagged)]


@router.post("", status_code=201, response_model=DeploymentPublic)
async def create_deployment(body: DeploymentCreate, request: Request, session: Session,
                            rt: Runtime, actor: Pipeline,
                            idem: DeploymentIdempotency) -> JSONBody:
    """Record a deployment and decide its gate (201 with ``gate``); retries replay."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    snapshot = await service.create_deployment(session, rt.platform, settings_of(request), body,
                                               actor=actor.sub)
    return await idem.respond_now(session, snapshot,
                                  location=f"/api/v1/deployments/{snapshot.id}")


@router.get("", response_model=DeploymentsPage)
async def list_deployments(
    session: Session, _: Reader,
    status: str | None = None,
    service_name: Annotated[str | None, Query(alias="service")] = None,
    environment: Environment | None = None,
    change_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: str | None = None,
) -> DeploymentsPage:
    stmt = select(Deployment)
    if status:
        stmt = stmt.where(Deployment.status == status)
    if service_name:
        stmt = stmt.where(Deployment.service == service_name)
    if environment:
        stmt = stmt.where(Deployment.environment == environment.value)
    if change_id:
        try:
            wanted = uuid.UUID(change_id)
        except ValueError:
            raise Problem(400, f"change_id {change_id!r} is not a UUID.") from None
        stmt = stmt.where(or_(Deployment.change_id == wanted, Deployment.gate_change_id == wanted))
    items, next_cursor = await page(session, stmt, Deployment, limit=limit, cursor=cursor)
    return DeploymentsPage(items=[service.public(d) for d in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=DeploymentPublic)
async def get_deployment(ref: str, session: Session, _: Reader) -> JSONBody:
    return _respond(service.public(await service.get_deployment(session, ref)))


@router.post("/{ref}/transitions", response_model=DeploymentPublic)
async def transition_deployment(ref: str, body: TransitionRequest, request: Request,
                                session: Session, rt: Runtime, actor: Pipeline) -> JSONBody:
    """Move a deployment (``in_progress`` needs an allowed gate); ``If-Match`` honoured."""
    dep = await service.get_deployment(session, ref)
    check_if_match(request, dep.revision)
    snapshot = await service.transition(session, rt.platform, dep, body.to, body.reason,
                                        actor=actor.sub)
    return _respond(snapshot)


class GateAnswer(GatePublic):
    deployment_id: uuid.UUID
    deployment_number: str
    deployment_status: str


async def _read_gate(request: Request, ref: str) -> GateAnswer:
    # A short session of its own: a long poll must not hold a transaction open.
    async with request.app.state.db.sessionmaker() as session:
        dep = await service.get_deployment(session, ref)
        return GateAnswer(**service.gate_public(dep).model_dump(), deployment_id=dep.id,
                          deployment_number=dep.number, deployment_status=dep.status)


@router.get("/{ref}/gate", response_model=GateAnswer)
async def get_gate(ref: str, request: Request, _: Reader,
                   wait: Annotated[float, Query(ge=0, le=60)] = 0) -> GateAnswer:
    """The gate; with ``?wait=N`` held up to N seconds until it leaves ``awaiting``.

    Woken by the consumed change event that re-decided it (``GateSignals``); with several
    replicas the event may land on another one, so the row is also re-read every
    ``gate_recheck_s`` seconds (5 by default) as a fallback.
    """
    answer = await _read_gate(request, ref)
    if answer.decision != Decision.awaiting or wait <= 0:
        return answer
    signals: service.GateSignals = request.app.state.gate_signals
    settings = settings_of(request)
    deadline = time.monotonic() + min(wait, settings.max_gate_wait_s)
    with signals.watch(answer.deployment_id) as woken:
        # Read again after registering, so a decision made in between is not missed.
        answer = await _read_gate(request, str(answer.deployment_id))
        while answer.decision == Decision.awaiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            woken.clear()
            # Another replica may have consumed the deciding event: read again now and then.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, settings.gate_recheck_s))
            answer = await _read_gate(request, str(answer.deployment_id))
    return answer


@dora_router.get("", response_model=DoraReport)
async def get_dora(
    request: Request, session: Session, _: Reader,
    service_name: Annotated[str | None, Query(alias="service", max_length=100)] = None,
    environment: Environment = Environment.production,
    window: Annotated[str, Query(max_length=8)] = "30d",
) -> DoraReport:
    """DORA for one service (or all) and environment over the last ``window`` (``30d``)."""
    try:
        span = parse_window(window)
    except ValueError as exc:
        raise Problem(400, str(exc), type_="urn:tandem:problem:bad-window") from None
    return await service.dora_report(session, service=service_name, environment=environment,
                                     window=window, span=span, until=utcnow(),
                                     buckets=settings_of(request).dora_buckets)
