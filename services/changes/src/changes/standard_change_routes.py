"""The standard change catalog HTTP API: owners write templates down, edit and retire them;
anyone reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from changes import standard_changes
from changes.models import StandardChange
from changes.rules.standard_changes import TEMPLATE_LIFECYCLE
from changes.schemas import (
    StandardChangeCreate,
    StandardChangePublic,
    StandardChangesPage,
    StandardChangeTransitionRequest,
    StandardChangeUpdate,
)
from changes.standard_changes import template_public, templates
from tandem.app import Session
from tandem.auth import Owner, Reader
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import Cursor, Limit, page
from tandem.vocabulary import NAME_PATTERN

router = APIRouter(prefix="/api/v1/standard-changes", tags=["standard changes"])
#: The ``{ref}`` of a template's path.
TemplateRef = Annotated[str, Path(
    description="The standard change template's id or number (STD0000004).",
    examples=["STD0000004"])]


@router.post("", status_code=201, response_model=StandardChangePublic)
async def create_template(body: StandardChangeCreate, session: Session, actor: Owner,
                          idem: Idempotency) -> JSONBody:
    """An owner writes a template down (approved by writing it, active at once)."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    snapshot = await standard_changes.create(session, body, actor=actor.sub)
    return await idem.respond(session, snapshot,
                              location=f"/api/v1/standard-changes/{snapshot.id}")


@router.get("", response_model=StandardChangesPage)
async def list_templates(
    session: Session, _: Reader,
    service_name: Annotated[str | None, Query(
        alias="service", max_length=100, pattern=NAME_PATTERN,
        description="Only templates for this service.", examples=["checkout"])] = None,
    status: Annotated[str | None, Query(
        pattern=r"^(active|retired)$", description="Only active or only retired templates.",
        examples=["active"])] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> StandardChangesPage:
    """Templates, newest first; filters: service, status."""
    stmt = select(StandardChange)
    if service_name:
        stmt = stmt.where(StandardChange.service == service_name)
    if status:
        stmt = stmt.where(StandardChange.status == status)
    items, next_cursor = await page(session, stmt, StandardChange, limit=limit, cursor=cursor)
    return StandardChangesPage(items=[template_public(t) for t in items],
                               next_cursor=next_cursor)


@router.get("/{ref}", response_model=StandardChangePublic)
async def get_template(ref: TemplateRef, session: Session, _: Reader) -> JSONBody:
    return resource_response(template_public(await templates.get(session, ref)))


@router.patch("/{ref}", response_model=StandardChangePublic)
async def update_template(ref: TemplateRef, body: StandardChangeUpdate, request: Request,
                          session: Session, actor: Owner) -> JSONBody:
    """Edit an active template (``If-Match`` honoured); changes already recorded keep theirs."""
    row = await templates.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    return resource_response(await standard_changes.edit(session, row, body, actor=actor.sub))


@router.post("/{ref}/transitions", response_model=StandardChangePublic)
async def transition_template(ref: TemplateRef, body: StandardChangeTransitionRequest,
                              request: Request, session: Session, actor: Owner) -> JSONBody:
    """Retire a template (``to: retired``): no change is recorded from it any more."""
    row = await templates.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    TEMPLATE_LIFECYCLE.check(row.status, body.to)
    return resource_response(await standard_changes.retire(
        session, row, actor=actor.sub, reason=body.reason or f"retired by {actor.sub}"))
