"""Projections: a service's own rows of what another service's events say.

No service reads another's tables or imports its code; it keeps the fields it needs of another
service's aggregates from their events' snapshots (``data.<aggregate>``, docs/architecture.md
lists the fields each service relies on). One way, for every service::

    class ChangeSnapshot(Snapshot):          # the fields read, as the publisher names them
        id: uuid.UUID
        status: str

    changes_seen = Projection(ChangeView, ChangeSnapshot)
    snapshot = await changes_seen.apply(session, event)        # one upsert statement

A snapshot model ignores fields it does not name (a publisher may add fields), and a table
column that the snapshot also names is copied from it; columns derived from the event
(``implemented_at``) are passed as ``derived``. Events of one aggregate arrive in order (same
key, same partition) and the consumer drops stale ones, so the last write is the newest state.
"""

from __future__ import annotations

import uuid
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from tandem.db import upsert
from tandem.events import CloudEvent


class Snapshot(BaseModel):
    """The fields a consumer reads of another service's snapshot; others are ignored."""

    model_config = ConfigDict(extra="ignore")


S = TypeVar("S", bound=Snapshot)
V = TypeVar("V", bound=SQLModel)


class Projection(Generic[V, S]):
    """Keeps ``table`` (a view row per aggregate id) current from events carrying ``snapshot``.

    ``keep`` names columns that hold their first non-null value (when an aggregate first
    reached a state, say).
    """

    def __init__(self, table: type[V], snapshot: type[S], *, keep: tuple[str, ...] = ()) -> None:
        self.table = table
        self.snapshot = snapshot
        self.keep = keep
        columns = self.table.__table__.columns  # type: ignore[attr-defined]
        self._copied = tuple(name for name in snapshot.model_fields if name in columns)

    def read(self, event: CloudEvent) -> S:
        """The event's snapshot of its aggregate (``data.<aggregate>``), validated."""
        return self.snapshot.model_validate(event.data[event.aggregate])

    async def apply(self, session: AsyncSession, event: CloudEvent, *,
                    derived: dict[str, Any] | None = None) -> S:
        """Upsert the view row of the event's aggregate; returns the snapshot."""
        return await self.store(session, self.read(event), derived=derived)

    async def store(self, session: AsyncSession, snapshot: S, *,
                    derived: dict[str, Any] | None = None) -> S:
        """Upsert the view row of a snapshot already :meth:`read` (a handler that derives
        columns from it reads it once)."""
        row = {name: getattr(snapshot, name) for name in self._copied}
        row.update(derived or {})
        await upsert(session, self.table.__table__, row, keep=self.keep)  # type: ignore[attr-defined]
        return snapshot

    async def get(self, session: AsyncSession, id_: uuid.UUID | None) -> V | None:
        """The view row of ``id_`` as stored now (never a stale copy the session holds)."""
        if id_ is None:
            return None
        stmt = (select(self.table).where(self.table.id == id_)  # type: ignore[attr-defined]
                .execution_options(populate_existing=True))
        return (await session.scalars(stmt)).first()
