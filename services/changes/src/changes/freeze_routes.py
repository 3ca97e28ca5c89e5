"""The freeze windows HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from changes import freezes
from changes.freezes import freeze_public, freeze_windows
from changes.models import Freeze
from changes.rules.freezes import FREEZE_API_MOVES, freeze_covers
from changes.schemas import FreezeCreate, FreezePublic, FreezesPage, FreezeTransitionRequest
from tandem.app import Session
from tandem.auth import Manager, Reader
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import CURSOR_DESCRIPTION, CURSOR_EXAMPLE, LIMIT_DESCRIPTION, page
from tandem.vocabulary import Environment

router = APIRouter(prefix="/api/v1/freezes", tags=["freezes"])
#: The ``{ref}`` of a freeze's path.
FreezeRef = Annotated[str, Path(
    description="The freeze's id or number (FRZ0000003).",
    examples=["FRZ0000003"])]


@router.post("", status_code=201, response_model=FreezePublic)
async def create_freeze(body: FreezeCreate, session: Session, actor: Manager,
                        idem: Idempotency) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    snapshot = await freezes.create(session, body, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/freezes/{snapshot.id}")


@router.get("", response_model=FreezesPage)
async def list_freezes(
    session: Session, _: Reader,
    status: Annotated[str | None, Query(
        description="Only freezes in this state (scheduled, active or ended), or in one of "
                    "several, comma-separated; unset, the active and upcoming ones.",
        examples=["active"])] = None,
    source: Annotated[str | None, Query(
        description="Only freezes set this way: manual (by a person) or incident (by an open "
                    "major incident).", examples=["incident"])] = None,
    service_name: Annotated[str | None, Query(
        alias="service", description="Only freezes covering this service (named, or freezing "
                                     "every service).", examples=["checkout"])] = None,
    environment: Annotated[Environment | None, Query(
        description="Only freezes covering this environment (named, or freezing every "
                    "environment).", examples=["production"])] = None,
    limit: Annotated[int, Query(ge=1, le=200, description=LIMIT_DESCRIPTION,
                                examples=[50])] = 50,
    cursor: Annotated[str | None, Query(description=CURSOR_DESCRIPTION,
                                        examples=[CURSOR_EXAMPLE])] = None,
) -> FreezesPage:
    stmt = select(Freeze)
    if status:
        stmt = stmt.where(Freeze.status.in_(status.split(",")))  # type: ignore[attr-defined]
    else:
        stmt = stmt.where(Freeze.status.in_(("scheduled", "active")))  # type: ignore[attr-defined]
    if source:
        stmt = stmt.where(Freeze.source == source)
    items, next_cursor = await page(session, stmt, Freeze, limit=limit, cursor=cursor)
    if service_name or environment:
        # Coverage lives in JSON lists; filtering the page keeps the cursor valid.
        items = [f for f in items
                 if (not service_name or freeze_covers(f.services, service_name))
                 and (not environment
                      or freeze_covers([], "", f.environments, environment.value))]
    return FreezesPage(items=[freeze_public(f) for f in items], next_cursor=next_cursor)


@router.get("/{ref}", response_model=FreezePublic)
async def get_freeze(ref: FreezeRef, session: Session, _: Reader) -> JSONBody:
    return resource_response(freeze_public(await freeze_windows.get(session, ref)))


@router.post("/{ref}/transitions", response_model=FreezePublic)
async def transition_freeze(ref: FreezeRef, body: FreezeTransitionRequest, request: Request,
                            session: Session, actor: Manager) -> JSONBody:
    # Ending early is the only move a client makes; the freeze clock makes the others.
    freeze = await freeze_windows.get(session, ref, for_update=True)
    check_if_match(request, freeze.version)
    FREEZE_API_MOVES.check(freeze.status, body.to)
    return resource_response(await freezes.end(
        session, freeze, actor=actor.sub, reason=body.reason or f"ended early by {actor.sub}"))
