"""The change calendar: changes (not canceled) and freezes whose windows overlap a span."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from sqlalchemy import or_, select

from changes.change_requests import ChangeAggregate
from changes.config import Settings
from changes.freezes import freeze_public
from changes.models import Change, Freeze
from changes.rules.freezes import freeze_covers
from changes.schemas import CalendarPublic
from tandem.app import Session
from tandem.auth import Reader
from tandem.errors import Invalid

#: The longest span one calendar answers, and the most entries of each kind it lists.
MAX_SPAN = timedelta(days=366)
MAX_ENTRIES = 1000

router = APIRouter(prefix="/api/v1", tags=["calendar"])


@router.get("/calendar", response_model=CalendarPublic)
async def calendar(
    session: Session, settings: Settings, _: Reader,
    from_: Annotated[AwareDatetime, Query(
        alias="from", description="The start of the period (RFC 3339 with its offset).",
        examples=["2026-03-02T00:00:00Z"])],
    to: Annotated[AwareDatetime, Query(
        description="The end of the period, after `from`; at most 366 days later.",
        examples=["2026-03-09T00:00:00Z"])],
    service_name: Annotated[str | None, Query(
        alias="service", description="Only changes of this service and freezes covering it.",
        examples=["checkout"])] = None,
) -> CalendarPublic:
    """Changes (not canceled) and freezes whose windows overlap ``[from, to)``."""
    if to <= from_:
        raise Invalid("to", "must be after from", detail="to must be after from.")
    if to - from_ > MAX_SPAN:
        raise Invalid("to", "window longer than 366 days",
                      detail="A calendar spans at most 366 days.")
    stmt = select(Change).where(
        Change.status != "canceled", Change.planned_start < to,  # type: ignore[operator]
        Change.planned_end > from_).order_by(Change.planned_start).limit(MAX_ENTRIES)  # type: ignore[operator]
    if service_name:
        stmt = stmt.where(Change.service == service_name)
    changes = list(await session.scalars(stmt))
    freezes = [f for f in await session.scalars(
        select(Freeze).where(Freeze.starts_at < to, or_(
            Freeze.ends_at.is_(None), Freeze.ends_at > from_))  # type: ignore[union-attr, operator]
        .order_by(Freeze.starts_at).limit(MAX_ENTRIES))
        if not service_name or freeze_covers(f.services, service_name)]
    return CalendarPublic(from_=from_, to=to,
                          changes=await ChangeAggregate(settings).snapshots(session, changes),
                          freezes=[freeze_public(f) for f in freezes])
