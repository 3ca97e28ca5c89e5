"""The standard change catalog (aggregate ``standard_change``, numbers ``STD...``): templates an
owner writes down per service, edits and retires; the template a change is recorded from; and
the service's template the gate's receipts are recorded from. The rules are in
:mod:`changes.rules.standard_changes`."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.errors import TemplateRetired
from changes.events import (
    StandardChangeCreated,
    StandardChangeTransitioned,
    StandardChangeUpdated,
)
from changes.models import StandardChange
from changes.rules.standard_changes import TEMPLATE_LIFECYCLE, TemplateFacts
from changes.schemas import StandardChangeCreate, StandardChangePublic, StandardChangeUpdate
from tandem.aggregate import Aggregate
from tandem.db import utcnow


def template_public(row: StandardChange) -> StandardChangePublic:
    """The template as the API returns it (and its events carry it)."""
    return StandardChangePublic.model_validate({
        **row.model_dump(), "allowed_transitions": TEMPLATE_LIFECYCLE.allowed(row.status)})


def template_facts(row: StandardChange) -> TemplateFacts:
    return TemplateFacts(id=row.id, number=row.number, service=row.service, status=row.status,
                         max_window_minutes=row.max_window_minutes)


class StandardChangeAggregate(Aggregate[StandardChange, StandardChangePublic]):
    async def snapshot(self, session: AsyncSession,
                       row: StandardChange) -> StandardChangePublic:
        return template_public(row)


templates = StandardChangeAggregate(StandardChange, name="standard_change", service="changes",
                                    number_prefix="STD")


async def create(session: AsyncSession, body: StandardChangeCreate, *,
                 actor: str) -> StandardChangePublic:
    """An owner writes a template down: it is approved by being written, and active."""
    row = await templates.new(session, **body.model_dump(), status="active",
                              approved_by=actor)
    return await templates.record(session, row, StandardChangeCreated, actor=actor)


async def edit(session: AsyncSession, row: StandardChange, body: StandardChangeUpdate, *,
               actor: str) -> StandardChangePublic:
    """Apply a PATCH to an active template (read for update); no change, no event."""
    if row.status != "active":
        raise TemplateRetired(row.number)
    # A null is no edit: every field of a template keeps a value.
    given = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    changes: dict[str, list[Any]] = {name: [getattr(row, name), value]
                                     for name, value in given.items()
                                     if getattr(row, name) != value}
    if not changes:
        return template_public(row)
    for name, (_, value) in changes.items():
        setattr(row, name, value)
    return await templates.record(session, row, StandardChangeUpdated, actor=actor,
                                  changes=changes)


async def retire(session: AsyncSession, row: StandardChange, *, reason: str,
                 actor: str) -> StandardChangePublic:
    """Retire a template (read for update): no change is recorded from it any more."""
    TEMPLATE_LIFECYCLE.check(row.status, "retired")
    now = utcnow()
    before = row.status
    row.status, row.retired_at, row.retired_by = "retired", now, actor
    return await templates.record(session, row, StandardChangeTransitioned, actor=actor,
                                  now=now, from_=before, to="retired", reason=reason)


async def template_of_change(session: AsyncSession,
                             template_id: uuid.UUID | None) -> TemplateFacts | None:
    """The template a change names, as stored now."""
    if template_id is None:
        return None
    row = await templates.find(session, template_id)
    return template_facts(row) if row is not None else None


async def active_template(session: AsyncSession, service: str) -> StandardChange | None:
    """The service's newest active template, which the gate's receipts are recorded from."""
    return (await session.scalars(
        select(StandardChange).where(StandardChange.service == service,
                                     StandardChange.status == "active")
        .order_by(StandardChange.created_at.desc()).limit(1)  # type: ignore[attr-defined]
        .execution_options(populate_existing=True))).first()
