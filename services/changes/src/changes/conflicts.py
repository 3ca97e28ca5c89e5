"""Schedule conflicts (ServiceNow's conflict detection): what a change's planned window
collides with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import Change, Freeze
from changes.rules.freezes import freeze_covers, freeze_spares
from changes.rules.lifecycle import OCCUPYING
from changes.schemas import Conflict
from tandem.db import utcnow


async def conflicts_of(session: AsyncSession, change: Change,
                       now: datetime | None = None) -> list[Conflict]:
    """Scheduled or implementing changes of the same service and environment in an overlapping
    window, and active or upcoming freezes covering the service that the window touches (but
    not, for an emergency change, the freeze of the incident it fixes)."""
    if change.planned_start is None or change.planned_end is None:
        return []
    now = now or utcnow()
    start, end = change.planned_start, change.planned_end
    others = await session.scalars(
        select(Change).where(
            Change.service == change.service, Change.environment == change.environment,
            Change.id != change.id, Change.status.in_(OCCUPYING),  # type: ignore[attr-defined]
            Change.planned_start < end, Change.planned_end > start,  # type: ignore[operator]
        ).order_by(Change.planned_start).execution_options(populate_existing=True))
    out = [Conflict(kind="change", id=o.id, number=o.number, status=o.status,
                    starts_at=o.planned_start, ends_at=o.planned_end,
                    detail=f"{o.number} is {o.status} for {o.service} in an overlapping window")
           for o in others]
    freezes = await session.scalars(
        select(Freeze).where(Freeze.status != "ended", Freeze.starts_at < end,
                             or_(Freeze.ends_at.is_(None),  # type: ignore[union-attr]
                                 and_(Freeze.ends_at > start,  # type: ignore[operator]
                                      Freeze.ends_at > now)))
        .order_by(Freeze.starts_at).execution_options(populate_existing=True))
    out += [Conflict(kind="freeze", id=f.id, number=f.number, status=f.status,
                     starts_at=f.starts_at, ends_at=f.ends_at,
                     detail=f"{f.number} freezes {', '.join(f.services) or 'every service'}: "
                            f"{f.reason}")
            for f in freezes if freeze_covers(f.services, change.service)
            and not freeze_spares(change.type, change.incident_id, f.incident_id)]
    return out
