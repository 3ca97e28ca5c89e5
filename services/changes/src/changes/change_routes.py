"""The change requests HTTP API: changes, their approvals and conflicts, success scores."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from changes import approvals, change_requests, success_scores
from changes.change_requests import ChangeAggregate
from changes.config import Settings
from changes.conflicts import conflicts_of
from changes.errors import StandardChangesOnly
from changes.models import Change
from changes.pipeline_scope import check_pipeline_scope
from changes.schemas import (
    ApprovalRequest,
    ChangeCreate,
    ChangePublic,
    ChangesPage,
    ChangeTransitionRequest,
    ChangeType,
    ChangeUpdate,
    ConflictsPublic,
    SuccessScorePublic,
)
from tandem.app import Session
from tandem.auth import MANAGE, Actor, ChangeRecorder, Manager, Reader, Role
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import CURSOR_DESCRIPTION, CURSOR_EXAMPLE, LIMIT_DESCRIPTION, page
from tandem.vocabulary import Environment

Limit = Annotated[int, Query(ge=1, le=200, description=LIMIT_DESCRIPTION, examples=[50])]
#: The ``{ref}`` of a change's path.
ChangeRef = Annotated[str, Path(description="The change's id or number (CHG0000012).",
                                examples=["CHG0000012"])]

router = APIRouter(prefix="/api/v1/changes", tags=["changes"])
scores_router = APIRouter(prefix="/api/v1/change-success-scores", tags=["changes"])


def _pipeline_records_standard_only(actor: Actor, change_type: str) -> None:
    if actor.role == Role.pipeline and change_type != ChangeType.standard:
        raise StandardChangesOnly()


@router.post("", status_code=201, response_model=ChangePublic)
async def create_change(body: ChangeCreate, session: Session, settings: Settings,
                        actor: ChangeRecorder, idem: Idempotency) -> JSONBody:
    _pipeline_records_standard_only(actor, body.type)
    if (replay := await idem.replay(session)) is not None:
        return replay
    await check_pipeline_scope(session, actor, body.service, body.environment.value,
                               rule="gate")
    change, snapshot = await change_requests.create(session, settings, body, actor=actor.sub,
                                                    by_pipeline=actor.role == Role.pipeline,
                                                    may_lower_risk=actor.role in MANAGE)
    return await idem.respond(session, snapshot, location=f"/api/v1/changes/{change.id}")


@router.get("", response_model=ChangesPage)
async def list_changes(
    session: Session, settings: Settings, _: Reader,
    status: Annotated[str | None, Query(description="Only changes in this state, or in one of "
                                                    "several, comma-separated.",
                                        examples=["scheduled,implement"])]
    = None,
    service_name: Annotated[str | None, Query(
        alias="service", description="Only changes of this service.",
        examples=["payments"])] = None,
    environment: Annotated[Environment | None, Query(
        description="Only changes in this environment.", examples=["production"])] = None,
    type: Annotated[ChangeType | None, Query(
        description="Only changes of this type.", examples=["emergency"])] = None,
    deployment_id: Annotated[uuid.UUID | None, Query(
        description="Only the change this deployment carries.",
        examples=["0b5f2c8e-6a43-4f0e-9d4c-2f1e7a9b3c11"])] = None,
    incident_id: Annotated[uuid.UUID | None, Query(
        description="Only the changes that fix this incident (emergency changes).",
        examples=["3f6c1a2e-8b4d-4e7f-9a1b-2c3d4e5f6a7b"])] = None,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION,
                                        examples=[CURSOR_EXAMPLE])] = None,
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
            stmt = stmt.where(getattr(Change, name) == value)
    items, next_cursor = await page(session, stmt, Change, limit=limit, cursor=cursor)
    return ChangesPage(items=await ChangeAggregate(settings).snapshots(session, items),
                       next_cursor=next_cursor)


@router.get("/{ref}", response_model=ChangePublic)
async def get_change(ref: ChangeRef, session: Session, settings: Settings, _: Reader) -> JSONBody:
    changes = ChangeAggregate(settings)
    return resource_response(await changes.snapshot(session, await changes.get(session, ref)))


@router.patch("/{ref}", response_model=ChangePublic)
async def update_change(ref: ChangeRef, body: ChangeUpdate, request: Request, session: Session,
                        settings: Settings, actor: ChangeRecorder) -> JSONBody:
    change = await ChangeAggregate(settings).get(session, ref, for_update=True)
    _pipeline_records_standard_only(actor, change.type)
    await check_pipeline_scope(session, actor, change.service, change.environment,
                               rule="gate")
    check_if_match(request, change.version)
    return resource_response(await change_requests.edit(
        session, settings, change, body, actor=actor.sub, may_lower_risk=actor.role in MANAGE))


@router.post("/{ref}/transitions", response_model=ChangePublic)
async def transition_change(ref: ChangeRef, body: ChangeTransitionRequest, request: Request,
                            session: Session, settings: Settings,
                            actor: ChangeRecorder) -> JSONBody:
    change = await ChangeAggregate(settings).get(session, ref, for_update=True)
    _pipeline_records_standard_only(actor, change.type)
    await check_pipeline_scope(session, actor, change.service, change.environment,
                               rule="gate")
    check_if_match(request, change.version)
    return resource_response(await change_requests.transition(
        session, settings, change, body, actor=actor.sub, may_force=actor.role in MANAGE))


@router.post("/{ref}/approvals", status_code=201, response_model=ChangePublic)
async def record_approval(ref: ChangeRef, body: ApprovalRequest, session: Session,
                          settings: Settings, actor: Manager, idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    change = await ChangeAggregate(settings).get(session, ref, for_update=True)
    snapshot = await approvals.record_approval(session, settings, change, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/changes/{change.id}")


@router.get("/{ref}/conflicts", response_model=ConflictsPublic)
async def get_conflicts(ref: ChangeRef, session: Session, settings: Settings,
                        _: Reader) -> ConflictsPublic:
    change = await ChangeAggregate(settings).get(session, ref)
    return ConflictsPublic(change_id=change.id, items=await conflicts_of(session, change))


@scores_router.get("/{service_name}", response_model=SuccessScorePublic)
async def get_success_score(service_name: Annotated[str, Path(
                                description="The service's name, as the catalog knows it.",
                                examples=["payments"])], session: Session,
                            _: Reader) -> SuccessScorePublic:
    """A service's change success score: +3 successful, -2 with issues, -5 unsuccessful,
    -10/-5/-2 for a confirmed P1/P2/P3 cause."""
    return await success_scores.score_of(session, service_name)

