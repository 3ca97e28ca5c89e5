"""Schedule conflicts (ServiceNow's conflict detection): what a change's planned window
collides with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.freezes import active_freezes
from changes.incidents import fixes_open_incident
from changes.models import Change, Freeze
from changes.rules.freezes import freeze_covers, freeze_spares
from changes.rules.lifecycle import OCCUPYING
from changes.schemas import Conflict
from tandem.db import utcnow


async def conflicts_of(session: AsyncSession, change: Change,
                       now: datetime | None = None) -> list[Conflict]:
    """Scheduled or implementing changes of the same service and environment in an overlapping
    window, and active or upcoming freezes covering the service and environment that the window
    touches (but not, for an emergency change fixing an open incident of its service, that
    service's incident freezes: :func:`~changes.rules.freezes.freeze_spares`)."""
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
    fixes = await fixes_open_incident(session, change.type, change.service, change.incident_id)
    out += [Conflict(kind="freeze", id=f.id, number=f.number, status=f.status,
                     starts_at=f.starts_at, ends_at=f.ends_at,
                     detail=f"{f.number} freezes {', '.join(f.services) or 'every service'} "
                            f"in {', '.join(f.environments) or 'every environment'}: "
                            f"{f.reason}")
            for f in freezes
            if freeze_covers(f.services, change.service, f.environments, change.environment)
            and not freeze_spares(change.type, change.incident_id, f.source, f.incident_id,
                                  fixes_open_incident=fixes)]
    return out


async def freezes_passed(session: AsyncSession, change: Change,
                         now: datetime | None = None) -> list[str]:
    """The numbers of the incident freezes in force on ``change``'s service and environment
    that it passes as an emergency fix of an open incident (recorded on its moves)."""
    if change.type != "emergency" or change.incident_id is None:
        return []
    fixes = await fixes_open_incident(session, change.type, change.service, change.incident_id)
    return [f.number for f in await active_freezes(session, change.service, change.environment,
                                                   now)
            if freeze_spares(change.type, change.incident_id, f.source, f.incident_id,
                             fixes_open_incident=fixes)]
