"""The async database engine and session: SQLite by default, PostgreSQL by URL.

A request's session commits once when the handler returns and rolls back on error; handlers
never commit. Work that must leave the process (outbox rows) is written in that transaction.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
import uuid
from collections import namedtuple
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Executable, Table, event, func, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import registry
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from tandem import sqlite_inline, tracing
from tandem.sqlite_inline import inline_url

JSONType = JSON().with_variant(JSONB(), "postgresql")
#: SQLite connections a service keeps open (and as many more while a storm lasts).
SQLITE_POOL_SIZE = 32

#: ``session.info`` key: the topic this database's outbox relays to (its service's own).
OUTBOX_TOPIC = "tandem.outbox_topic"


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A new id, ordered by time (UUIDv7, RFC 9562): 48 bits of Unix milliseconds, then 74
    random bits. Ids made later sort later, so a table or index keyed by them grows at its
    end instead of at random pages: an inbox of 100k events, say, writes a few pages a batch
    where random ids dirtied one page per event."""
    random = int.from_bytes(os.urandom(10)) & _RANDOM_BITS
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | random | _VERSION_7)


#: The 80 bits below the timestamp less the version (4) and variant (2) bits.
_RANDOM_BITS = (1 << 80) - 1 & ~(0xF << 76) & ~(0x3 << 62)
#: Version 7 and the RFC 9562 variant (binary 10).
_VERSION_7 = 0x7 << 76 | 0x2 << 62


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # Tandem begins transactions itself (below), so the driver must not.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # SQLite has one writer: taking the write lock at BEGIN makes a read-then-write
    # transaction wait its turn instead of failing (or both writers reading one version).
    # Reads begin deferred, so in WAL mode they never wait for a writer.
    if conn.get_execution_options().get("tandem_read_only"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """One service's engine, session factory and the signal that wakes its outbox relay."""

    def __init__(self, url: str, *, topic: str | None = None, echo: bool = False,
                 sqlite_inline: bool = True) -> None:
        # SQLite is driven on the event loop unless told otherwise (see ``sqlite_inline``).
        url = inline_url(url) if sqlite_inline else url
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 10}
            # Connections kept for a storm's worth of requests at once: a request waiting for
            # the write lock holds its connection, and one past the pool's size is closed when
            # returned, so the next opened a new one (a file open and its pragmas a request:
            # 30% of the CPU of a /v2/enqueue storm with the default pool of 5).
            kwargs.update(pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
        else:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        #: The service's topic: events written in these sessions go there (``add_event``).
        self.topic = topic
        info = {OUTBOX_TOPIC: topic}
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, info=info)
        #: Sessions that only read (GET requests, the relay's scan).
        self.reader = async_sessionmaker(
            self.engine.execution_options(tandem_read_only=True), expire_on_commit=False,
            info=info,
        )
        self.outbox_written = asyncio.Event()
        self._signals: dict[str, asyncio.Event] = {}

    def signal(self, name: str) -> asyncio.Event:
        """A named wake-up of a worker over this database (such as a queue's applier), set
        after a commit by :func:`wake_after_commit`."""
        return self._signals.setdefault(name, asyncio.Event())

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def transaction(self, *, read_only: bool = False) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error, then wakes the relay."""
        async with (self.reader if read_only else self.sessionmaker)() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        if session.info.pop("outbox", False):
            self.outbox_written.set()
        for signal in session.info.pop("wake", ()):
            signal.set()

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a write transaction, committed on success: for a hot path of
        a statement or two that needs no ORM session (its setup cost more than the insert)."""
        async with self.engine.begin() as connection:
            yield connection

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()


def wake_after_commit(session: AsyncSession, signal: asyncio.Event) -> None:
    """Set ``signal`` once the session's transaction (:meth:`Database.transaction`) commits:
    a worker woken earlier could read before the row it is woken for is visible."""
    session.info.setdefault("wake", []).append(signal)


async def upsert(session: AsyncSession, table: Table, row: dict[str, Any], *,
                 keep: tuple[str, ...] = ()) -> None:
    """Insert ``row`` into ``table``, or update the row with its primary key; the columns in
    ``keep`` hold their first non-null value. One prepared statement, for projections that a
    consumer writes for every event (the ORM's load-then-flush costs several)."""
    bind = session.bind
    dialect = bind.dialect.name if bind is not None else (await session.connection()).dialect.name
    await _upsert_statement(dialect, table, tuple(row), keep).run(session, row)


@functools.cache
def _upsert_statement(dialect: str, table: Table, names: tuple[str, ...],
                      keep: tuple[str, ...]) -> Prepared:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    changed = {name: (func.coalesce(table.c[name], insert.excluded[name]) if name in keep
                      else insert.excluded[name])
               for name in names if not table.c[name].primary_key}
    return Prepared(insert.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns], set_=changed))


#: ``session.info`` key: the transaction and the driver connection prepared statements use.
_DRIVER = "tandem.driver"


class Prepared:
    """A statement of a hot path, compiled once per backend and run on the session's own
    transaction::

        NEXT = Prepared(update(numbers).where(...).returning(numbers.c.last_value))
        rows = await NEXT.run(session, {"counter": "INC", "count": 1})

    On SQLite (the inline driver) it goes to ``sqlite3`` itself: the SQL and the order of its
    parameters are compiled once, every value passes through its column type's own bind
    processor (rows are stored exactly as SQLAlchemy stores them) and every result value
    through the result processor. That skips SQLAlchemy's execution context, cache key and
    greenlet hop per call, which cost several times the SQLite work on a deployment create.
    On other backends (PostgreSQL, aiosqlite) it is a Core execute on the session's
    connection, and so is every statement while tracing is on (each statement a span). Rows
    come back with attribute access either way.

    The session is not flushed first: for tables the ORM session holds no pending rows of
    (outbox, counters, idempotency records, rows inserted as plain records).
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, ...], _Plan | None] = {}

    async def run(self, on: AsyncSession | AsyncConnection,
                  params: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
                  ) -> list[Any]:
        """Execute with ``params`` (a list: once per row) in the transaction of ``on`` (a
        session, or a Core connection of :meth:`Database.begin`); the rows it returns."""
        many = params if isinstance(params, list) else [params or {}]
        if not many:
            return []
        # Traced, every statement goes through Core, where each is a span of its trace.
        driver = None if tracing.enabled() else await _driver_of(on)
        if driver is not None:
            keys = tuple(many[0])
            plan = self._plans.get(keys, _UNPLANNED)
            if plan is _UNPLANNED:
                plan = self._plans[keys] = _Plan.of(self.statement, keys, driver[0])
            if plan is not None:
                try:
                    raw = await driver[1].run(plan.sql, [plan.args(p) for p in many])
                except sqlite3.Error as exc:  # as SQLAlchemy raises it (IntegrityError, ...)
                    raise DBAPIError.instance(plan.sql, None, exc, sqlite3.Error,
                                              dialect=driver[0]) from exc
                return plan.rows(raw)
        connection = on if isinstance(on, AsyncConnection) else await on.connection()
        result = await connection.execute(self.statement, many if len(many) > 1 else many[0])
        return list(result.all()) if result.returns_rows else []


async def _driver_of(on: AsyncSession | AsyncConnection) -> tuple[Dialect, Any] | None:
    """The dialect and the inline SQLite connection of the transaction of ``on`` (a session's
    begun if it was not), or None on another driver."""
    if isinstance(on, AsyncConnection):
        raw = (await on.get_raw_connection()).driver_connection
        return (on.dialect, raw) if isinstance(raw, sqlite_inline.Connection) else None
    session = on
    transaction = session.sync_session.get_transaction()
    known = session.info.get(_DRIVER)
    if known is not None and transaction is not None and known[0] is transaction:
        return known[1]  # type: ignore[no-any-return]
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    driver = ((connection.dialect, raw) if isinstance(raw, sqlite_inline.Connection)
              else None)
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver


class _Plan:
    """A statement compiled for the inline driver: SQL, bind order and processors, and the
    result columns' processors."""

    __slots__ = ("binds", "compiled", "results", "row", "sql")

    @classmethod
    def of(cls, statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> _Plan | None:
        """None when the statement needs what only SQLAlchemy's execution does (Python-side
        column defaults, parameters expanded at execution): it then runs through Core."""
        column_keys = list(keys) if isinstance(statement, Insert | Update) else None
        compiled: Any = statement.compile(dialect=dialect, column_keys=column_keys)
        if compiled.positiontup is None or compiled.insert_prefetch or compiled.update_prefetch:
            return None
        sql: str = compiled.string
        binds: list[tuple[str | None, Any, Any]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.expanding:
                binds.append((name, process, None))
                continue
            # ``IN`` over values fixed in the statement: expanded here, once.
            values = bind.value
            if bind.callable is not None or name in keys or not values:
                return None
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * len(values)), 1)
            binds.extend((None, None, v if process is None else process(v)) for v in values)
        return cls(compiled, sql, binds, dialect)

    def __init__(self, compiled: Any, sql: str, binds: list[tuple[str | None, Any, Any]],
                 dialect: Dialect) -> None:
        self.compiled = compiled
        self.sql = sql
        #: (name, processor, None) per parameter, or (None, None, value) for a fixed one.
        self.binds = binds
        columns = list(getattr(compiled.statement, "exported_columns", ()))
        self.results = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                        for c in columns]
        self.row = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        return [fixed if name is None else values[name] if process is None
                else process(values[name]) for name, process, fixed in self.binds]

    def rows(self, raw: list[Any]) -> list[Any]:
        results, make = self.results, self.row._make
        return [make([v if p is None else p(v) for p, v in zip(results, r, strict=True)])
                for r in raw]


_UNPLANNED: Any = object()


def service_table_base() -> type[SQLModel]:
    """A SQLModel base with its own registry, so each service's tables live in their own
    metadata (two services may both keep, say, an ``incident_view`` projection)."""

    class ServiceTable(SQLModel, registry=registry()):
        pass

    return ServiceTable
