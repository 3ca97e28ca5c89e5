"""The incident's timeline: every event about it, as published, oldest first.

The aggregate's ``recorded`` hook (:mod:`incidents.incident`) appends each event in the
transaction that writes it to the outbox, so no write can leave the timeline behind.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import IncidentEvent
from tandem.db import Prepared
from tandem.events import CloudEvent

#: A timeline entry: one prepared insert of a plain record (an ORM row and its flush cost
#: several times the insert, on every event about an incident).
_APPEND = Prepared(insert(IncidentEvent.__table__))  # type: ignore[attr-defined]


async def append(session: AsyncSession, incident_id: uuid.UUID, event: CloudEvent) -> None:
    """Add ``event`` to the incident's timeline (its unique ``(incident_id, sequence)`` is one
    more guard against two writers of one version)."""
    await _APPEND.run(session, {
        "id": event.id, "incident_id": incident_id, "sequence": event.sequence,
        "type": event.type, "time": event.time, "actor": event.actor, "data": event.data})


async def entries(session: AsyncSession, incident_id: uuid.UUID, *, after: int = 0,
                  limit: int | None = None, type_: str | None = None) -> list[IncidentEvent]:
    """The incident's events after sequence ``after``, oldest first (of one type if given)."""
    stmt = (select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id, IncidentEvent.sequence > after)
            .order_by(IncidentEvent.sequence))  # type: ignore[arg-type]
    if type_ is not None:
        stmt = stmt.where(IncidentEvent.type == type_)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.scalars(stmt)).all())
