"""The changes HTTP API: change requests, approvals, conflicts, freezes, calendar, scores."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime
from sqlalchemy import or_, select

from changes import service
from changes.models import (
    ApprovalRequest,
    CalendarPublic,
    Change,
    ChangeCreate,
    ChangePublic,
    ChangesPage,
    ChangeTransitionRequest,
    ChangeType,
    ChangeUpdate,
    ConflictsPublic,
    Environment,
    Freeze,
    FreezeCreate,
    FreezePublic,
    FreezesPage,
    FreezeTransitionRequest,
    SuccessScorePublic,
)
from changes.policy import FREEZE_API_MOVES
from changes.service import Context
from tandem.app import Session
from tandem.auth import MANAGE, ChangeRecorder, Manager, Reader, Role
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import page
from tandem.problems import Problem


def context_of(request: Request) -> Context:
    return request.app.state.changes_context  # type: ignore[no-any-return]


Ctx = Annotated[Context, Depends(context_of)]
Limit = Annotated[int, Query(ge=1, le=200)]

changes_router = APIRouter(prefix="/api/v1/changes", tags=["changes"])
freezes_router = APIRouter(prefix="/api/v1/freezes", tags=["freezes"])
other_router = APIRouter(prefix="/api/v1", tags=["calendar"])

_PIPELINE_STANDARD_ONLY = Problem(
    403, "The pipeline role records and moves standard changes only.",
    type_="urn:tandem:problem:forbidden")


@changes_router.post("", status_code=201, response_model=ChangePublic)
async def create_change(body: ChangeCreate, session: Session, ctx: Ctx, actor: ChangeRecorder,
                        idem: Idempotency) -> JSONBody:
    if actor.role == Role.pipeline and body.type != ChangeType.standard:
        raise _PIPELINE_STANDARD_ONLY
    if (replay := await idem.replay(session)) is not None:
        return replay
    change = await service.create_change(session, ctx, body, actor=actor.sub)
    return idem.respond(session, await service.public_change(session, ctx, change),
                        location=f"/api/v1/changes/{change.id}")


@changes_router.get("", response_model=ChangesPage)
async def list_changes(
    session: Session, ctx: Ctx, _: Reader,
    status: Annotated[str | None, Query(description="One state or several, comma-separated")]
    = None,
    service_name: Annotated[str | None, Query(alias="service")] = None,
    environment: Environment | None = None, type: ChangeType | None = None,
    deployment_id: str | None = None, incident_id: str | None = None,
    limit: Limit = 50, cursor: str | None = None,
) -> ChangesPage:
    stmt = select(Change)
    if status:
        stmt = stmt.where(Change.status.in_(status.split(",")))  # type: ignore[attr-defined]
    if service_name:
        stmt = stmt.where(Change.service == service_name)
    if environment:
        stmt = stmt.where(Change.environment == environment.value)
    if type:
        stmt = stmt.where(Change.type == type.value)
    for name, value in (("deployment_id", deployment_id), ("incident_id", incident_id)):
        if value:
            stmt = stmt.where(getattr(Change, name) == _uuid(value, name))
    items, next_cursor = await page(session, stmt, Change, limit=limit, cursor=cursor)
    return ChangesPage(items=await service.public_changes(session, ctx, items),
                       next_cursor=next_cursor)


@changes_router.get("/{ref}", response_model=ChangePublic)
async def get_change(ref: str, session: Session, ctx: Ctx, _: Reader) -> JSONBody:
    change = await service.get_change(session, ref)
    return resource_response(await service.public_change(session, ctx, change))


@changes_router.patch("/{ref}", response_model=ChangePublic)
async def update_change(ref: str, body: ChangeUpdate, request: Request, session: Session,
                        ctx: Ctx, actor: ChangeRecorder) -> JSONBody:
    change = await service.get_change(session, ref, for_update=True)
    if actor.role == Role.pipeline and change.type != "standard":
        raise _PIPELINE_STANDARD_ONLY
    check_if_match(request, change.version)
    await service.update_change(session, ctx, change, body, actor=actor.sub)
    return resource_response(await service.public_change(session, ctx, change))


@changes_router.post("/{ref}/transitions", response_model=ChangePublic)
async def transition_change(ref: str, body: ChangeTransitionRequest, request: Request,
                            session: Session, ctx: Ctx, actor: ChangeRecorder) -> JSONBody:
    change = await service.get_change(session, ref, for_update=True)
    if actor.role == Role.pipeline and change.type != "standard":
        raise _PIPELINE_STANDARD_ONLY
    check_if_match(request, change.version)
    await service.transition_change(session, ctx, change, body, actor=actor.sub,
                                    may_force=actor.role in MANAGE)
    return resource_response(await service.public_change(session, ctx, change))


@changes_router.post("/{ref}/approvals", status_code=201, response_model=ChangePublic)
async def record_approval(ref: str, body: ApprovalRequest, session: Session, ctx: Ctx,
                          actor: Manager, idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    change = await service.get_change(session, ref, for_update=True)
    await service.record_approval(session, ctx, change, body, actor=actor.sub)
    return idem.respond(session, await service.public_change(session, ctx, change),
                        location=f"/api/v1/changes/{change.id}")


@changes_router.get("/{ref}/conflicts", response_model=ConflictsPublic)
async def get_conflicts(ref: str, session: Session, _: Reader) -> ConflictsPublic:
    change = await service.get_change(session, ref)
    return ConflictsPublic(change_id=change.id, items=await service.conflicts_of(session, change))


@freezes_router.post("", status_code=201, response_model=FreezePublic)
async def create_freeze(body: FreezeCreate, session: Session, ctx: Ctx, actor: Manager,
                        idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    freeze = await service.create_freeze(session, ctx, body, actor=actor.sub)
    return idem.respond(session, service.public_freeze(freeze),
                        location=f"/api/v1/freezes/{freeze.id}")


@freezes_router.get("", response_model=FreezesPage)
async def list_freezes(
    session: Session, _: Reader,
    status: Annotated[str | None, Query(
        description="scheduled, active or ended; default: active and upcoming")] = None,
    source: str | None = None,
    service_name: Annotated[str | None, Query(
        alias="service", description="Freezes covering this service (named or all)")] = None,
    limit: Limit = 50, cursor: str | None = None,
) -> FreezesPage:
    stmt = select(Freeze)
    if status:
        stmt = stmt.where(Freeze.status.in_(status.split(",")))  # type: ignore[attr-defined]
    else:
        stmt = stmt.where(Freeze.status.in_(("scheduled", "active")))  # type: ignore[attr-defined]
    if source:
        stmt = stmt.where(Freeze.source == source)
    items, next_cursor = await page(session, stmt, Freeze, limit=limit, cursor=cursor)
    if service_name:
        # Coverage lives in a JSON list; filtering the page keeps the cursor valid.
        items = [f for f in items if not f.services or service_name in f.services]
    return FreezesPage(items=[service.public_freeze(f) for f in items], next_cursor=next_cursor)


@freezes_router.get("/{ref}", response_model=FreezePublic)
async def get_freeze(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(service.public_freeze(await service.get_freeze(session, ref)))


@freezes_router.post("/{ref}/transitions", response_model=FreezePublic)
async def transition_freeze(ref: str, body: FreezeTransitionRequest, request: Request,
                            session: Session, ctx: Ctx, actor: Manager) -> JSONBody:
    freeze = await service.get_freeze(session, ref, for_update=True)
    check_if_match(request, freeze.version)
    FREEZE_API_MOVES.check(freeze.status, body.to)
    await service.end_freeze(session, ctx, freeze, actor=actor.sub,
                             reason=body.reason or f"ended early by {actor.sub}")
    return resource_response(service.public_freeze(freeze))


@other_router.get("/calendar", response_model=CalendarPublic, tags=["calendar"])
async def calendar(
    session: Session, ctx: Ctx, _: Reader,
    from_: Annotated[AwareDatetime, Query(alias="from")],
    to: AwareDatetime,
    service_name: Annotated[str | None, Query(alias="service")] = None,
) -> CalendarPublic:
    """Changes (not canceled) and freezes whose windows overlap ``[from, to)``."""
    if to <= from_:
        raise Problem(422, "to must be after from.", type_="urn:tandem:problem:validation",
                      errors=[{"field": "to", "message": "must be after from"}])
    if to - from_ > timedelta(days=366):
        raise Problem(422, "A calendar spans at most 366 days.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "to", "message": "window longer than 366 days"}])
    stmt = select(Change).where(
        Change.status != "canceled", Change.planned_start < to,  # type: ignore[operator]
        Change.planned_end > from_).order_by(Change.planned_start).limit(1000)  # type: ignore[operator]
    if service_name:
        stmt = stmt.where(Change.service == service_name)
    changes = list(await session.scalars(stmt))
    freezes = [f for f in await session.scalars(
        select(Freeze).where(Freeze.starts_at < to, or_(
            Freeze.ends_at.is_(None), Freeze.ends_at > from_))  # type: ignore[union-attr, operator]
        .order_by(Freeze.starts_at).limit(1000))
        if not service_name or not f.services or service_name in f.services]
    return CalendarPublic(from_=from_, to=to,
                          changes=await service.public_changes(session, ctx, changes),
                          freezes=[service.public_freeze(f) for f in freezes])


@other_router.get("/change-success-scores/{service_name}", response_model=SuccessScorePublic,
                  tags=["changes"])
async def get_success_score(service_name: str, session: Session,
                            _: Reader) -> SuccessScorePublic:
    """A service's change success score: +3 successful, -2 with issues, -5 unsuccessful,
    -10/-5/-2 for a confirmed P1/P2/P3 cause."""
    return await service.success_score(session, service_name)


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Problem(422, f"{field} must be a UUID.", type_="urn:tandem:problem:validation",
                      errors=[{"field": field, "message": "not a UUID"}]) from None


routers = [changes_router, freezes_router, other_router]
