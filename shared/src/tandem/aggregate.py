"""The aggregate core: how every Tandem resource is stored, read, locked and published.

An aggregate (an incident, a change, a freeze, a deployment, ...) is one table row with the
columns of :class:`AggregateColumns` (``id``, ``number``, ``version``, ``created_at``,
``updated_at``) and the events about it. A service declares each of its aggregates once::

    class IncidentAggregate(Aggregate[Incident, IncidentPublic]):
        async def snapshot(self, session, row): return IncidentPublic(...)

    incidents = IncidentAggregate(Incident, name="incident", service="incidents",
                                  number_prefix="INC")

and then writes every change the same way::

    incident = await incidents.get(session, ref, for_update=True)   # the write lock
    incident.status = "acknowledged"
    await incidents.record(session, incident, IncidentTransitioned, actor=actor.sub,
                           from_="new", to="acknowledged", reason="")

``record`` is the only way an event is written: it bumps the version (every event about an
aggregate gets the next one, so ``sequence`` = ``version`` after the change), builds the event's
``data`` from its documented model (:class:`EventData`, whose class names the event type) with
the aggregate's snapshot, and puts it in the outbox in the caller's transaction.

**The locking policy.** Every read-modify-write of an aggregate reads it with
``for_update=True`` (or :meth:`Aggregate.locked` for a query): on PostgreSQL that is
``SELECT ... FOR UPDATE``, so a second writer waits for the first to commit and then sees its
version (``If-Match`` then answers 412, a move no longer legal 409); on SQLite every write
transaction begins ``IMMEDIATE`` (:mod:`tandem.db`), which serialises writers the same way. The
outbox's unique ``(aggregate_id, sequence)`` is the backstop: a writer that skipped the lock
fails at commit instead of publishing a second event with a taken sequence.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from tandem.db import UTCDateTime, new_id, utcnow
from tandem.errors import NotFound
from tandem.events import CloudEvent, new_event
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.tracing import current_traceparent


class AggregateColumns(SQLModel):
    """The columns every aggregate's table has (contract section 3); mix into a table model."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    number: str = Field(unique=True, max_length=16)
    #: 0 until the aggregate's first event (``created``) makes it 1.
    version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class EventData(BaseModel):
    """The ``data`` of one event type. A subclass names its type and holds the aggregate's
    snapshot under the aggregate's name, beside the facts of the event::

        class IncidentTransitioned(EventData):
            event_type: ClassVar[str] = "tandem.incident.transitioned"
            incident: IncidentPublic
            from_: str = Field(alias="from")
            to: str

    The service builds every event's data through these models, so the documented schema
    (``tools/gen_event_docs.py``) and the published bytes agree.
    """

    model_config = ConfigDict(populate_by_name=True)

    event_type: ClassVar[str]

    def dump(self) -> dict[str, Any]:
        """The JSON ``data`` (aliases such as ``from`` applied)."""
        return self.model_dump(mode="json", by_alias=True)


def event_catalog(*models: type[EventData]) -> dict[str, type[EventData]]:
    """``{event type: data model}`` for a service's events (read by the event docs)."""
    return {model.event_type: model for model in models}


Row = TypeVar("Row", bound=AggregateColumns)
Snapshot = TypeVar("Snapshot", bound=BaseModel)
#: A table model (``plain_row``).
T = TypeVar("T", bound=SQLModel)


def plain_row(table: type[T], values: dict[str, Any]) -> T:
    """A new row of ``table`` holding ``values`` and the defaults of the fields not given, as
    the table model's own constructor makes it (no validation; keys that are not fields are
    ignored), without setting each field through SQLAlchemy's and SQLModel's attribute hooks:
    that alone was a fifth of the CPU of opening an incident. The ORM inserts a pending row
    from the values it holds, and tracks every change made to it afterwards as usual."""
    row: T = table._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    held = row.__dict__
    given = set()
    for name, default in _fields_of(table):
        if name in values:
            held[name] = values[name]
            given.add(name)
        elif default is not None:
            held[name] = default()
    object.__setattr__(row, "__pydantic_fields_set__", given)
    return row


@functools.cache
def _fields_of(table: type[SQLModel]) -> tuple[tuple[str, Callable[[], Any] | None], ...]:
    """Each field of ``table`` and how to make its default (None: it has none)."""
    return tuple(
        (name, None if field.is_required()
         else functools.partial(field.get_default, call_default_factory=True))
        for name, field in table.model_fields.items())


class Aggregate(Generic[Row, Snapshot]):
    """One aggregate type of a service: its table, its human numbers, its snapshot, its events.

    Subclasses implement :meth:`snapshot` (the resource as the API returns it and as its events
    carry it) and may override :meth:`recorded` to keep something beside each event (the
    incidents service's timeline).
    """

    def __init__(self, table: type[Row], *, name: str, service: str,
                 number_prefix: str) -> None:
        self.table = table
        #: ``incident``: the key of the snapshot in ``data`` and the middle of its event types.
        self.name = name
        #: The service that owns it (the events' ``source``).
        self.service = service
        self.number_prefix = number_prefix

    # --- reading ----------------------------------------------------------------------------

    def ref_clause(self, ref: str) -> Any:
        """The condition for ``ref``: a UUID, else a human number (``INC0000042``)."""
        try:
            return self.table.id == uuid.UUID(ref)
        except ValueError:
            return self.table.number == ref.upper()

    def locked(self, stmt: Select[Any]) -> Select[Any]:
        """``stmt`` under the locking policy: rows it reads are this writer's until commit,
        read afresh even when the session already holds them."""
        return stmt.with_for_update().execution_options(populate_existing=True)

    async def get(self, session: AsyncSession, ref: str | uuid.UUID, *,
                  for_update: bool = False) -> Row:
        """The aggregate by id or number; :class:`NotFound` otherwise. A writer passes
        ``for_update=True`` (the locking policy)."""
        ref = str(ref)
        if len(ref) > 64 or "\x00" in ref:
            raise NotFound(self.name, ref)
        stmt = select(self.table).where(self.ref_clause(ref))
        if for_update:
            stmt = self.locked(stmt)
        row = (await session.scalars(stmt)).first()
        if row is None:
            raise NotFound(self.name, ref)
        return row

    async def find(self, session: AsyncSession, id_: uuid.UUID | None, *,
                   for_update: bool = False) -> Row | None:
        """The aggregate with ``id_``, or None (for reactions to events naming it)."""
        if id_ is None:
            return None
        stmt = select(self.table).where(self.table.id == id_)
        if for_update:
            stmt = self.locked(stmt)
        return (await session.scalars(stmt)).first()

    # --- writing ----------------------------------------------------------------------------

    async def new_number(self, session: AsyncSession) -> str:
        """The next human number (``INC0000001``), taken in the caller's transaction."""
        return await next_number(session, self.number_prefix)

    async def new(self, session: AsyncSession, **fields: Any) -> Row:
        """A new aggregate at version 0 with the next number, added to the session; its
        ``created`` event (``record``) makes it version 1."""
        now = fields.pop("now", None) or utcnow()
        row = plain_row(self.table, {"number": await self.new_number(session), "version": 0,
                                     "created_at": now, "updated_at": now, **fields})
        session.add(row)
        return row

    @staticmethod
    def bump(row: Any, now: datetime | None = None) -> None:
        """Advance ``row`` to its next version (``record`` does this for every event)."""
        row.version += 1
        row.updated_at = now or utcnow()

    async def snapshot(self, session: AsyncSession, row: Row) -> Snapshot:
        """The aggregate as the API returns it (and its events carry it)."""
        raise NotImplementedError

    async def record(self, session: AsyncSession, row: Row, data_type: type[EventData], *,
                     actor: str, now: datetime | None = None, **facts: Any) -> Snapshot:
        """Bump ``row``'s version and write the event ``data_type`` about it to the outbox, in
        the caller's transaction; returns the snapshot the event carries."""
        if not data_type.event_type.startswith(f"tandem.{self.name}."):
            raise TypeError(f"{data_type.__name__} is not an event of {self.name}")
        self.bump(row, now)
        snapshot = await self.snapshot(session, row)
        data = data_type.model_validate({self.name: snapshot, **facts})
        event = new_event(service=self.service, type=data_type.event_type, subject=row.id,
                          sequence=row.version, actor=actor, data=data.dump(),
                          traceparent=current_traceparent())
        await add_event(session, event)
        await self.recorded(session, row, event)
        return snapshot

    async def recorded(self, session: AsyncSession, row: Row, event: CloudEvent) -> None:
        """Called after each event about ``row`` is written (same transaction)."""
