"""What the changes service knows of incidents: its projection of their snapshots (fields per
docs/architecture.md), read by risk and by S4 freezes."""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import IncidentView
from changes.rules.freezes import INCIDENT_OVER
from tandem.projection import Projection, Snapshot


class IncidentSnapshot(Snapshot):
    """The fields read of ``data.incident``."""

    id: uuid.UUID
    number: str = ""
    service: str
    environment: str
    priority: int
    major: bool
    status: str


#: The incident projection: one upsert per incident event.
incidents_seen = Projection(IncidentView, IncidentSnapshot)


async def fixes_open_incident(session: AsyncSession, change_type: str, service: str,
                              incident_id: uuid.UUID | None) -> bool:
    """Whether an emergency change of ``service`` is linked to an incident known open on that
    same service (what lets it pass the service's incident freezes)."""
    if change_type != "emergency" or incident_id is None:
        return False
    row = await session.get(IncidentView, incident_id, populate_existing=True)
    return row is not None and row.service == service and row.status not in INCIDENT_OVER


async def open_incidents(session: AsyncSession, service: str,
                         environment: str) -> tuple[int, int]:
    """How many incidents of ``service`` in ``environment`` are open, and how many of those
    are major."""
    row = (await session.execute(
        select(func.count(), func.coalesce(func.sum(cast(IncidentView.major, Integer)), 0))
        .where(IncidentView.service == service, IncidentView.environment == environment,
               IncidentView.status.not_in(INCIDENT_OVER)))).one()  # type: ignore[attr-defined]
    return int(row[0]), int(row[1])
