"""``sqlite+inline``: SQLAlchemy's aiosqlite dialect over ``sqlite3`` called on the event loop.

aiosqlite runs every cursor call in a worker thread: about four thread round trips a statement
(open cursor, execute, fetch, close), each a queue hand-off, a wake-up of the loop through its
self-pipe and a GIL switch. On these machines one round trip cost 0.1-0.2 ms of CPU, more than
the SQLite work itself; a deployment create made about fifty of them and a consumed event
about as many. This driver keeps the aiosqlite
dialect (SQL, types, pool) and swaps only the module it drives for a shim with the same
surface whose coroutines call ``sqlite3`` directly and never suspend.

Why calling SQLite on the loop is acceptable: it is the embedded, one-process default, and a
statement on a local WAL database takes microseconds. The one long wait, for another
transaction's write lock, must not happen on the loop's thread (the holder could never
finish), so SQLite's busy timeout is set to zero and a busy statement is retried after a
short ``asyncio.sleep`` instead, up to the configured busy timeout.
``Database`` uses it for every SQLite URL; ``TANDEM_SQLITE_INLINE=false`` returns to aiosqlite.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi, SQLiteDialect_aiosqlite

DRIVER = "inline"

# The module surface SQLAlchemy's aiosqlite adapter reads.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


_BUSY_PRAGMA = re.compile(r"^\s*PRAGMA\s+busy_timeout\s*=\s*(\d+)\s*$", re.IGNORECASE)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


async def _when_free(connection: Connection, attempt: Callable[[], Any]) -> Any:
    """Run ``attempt``; while SQLite answers busy, yield to the loop and retry.

    SQLite's own busy handler would sleep on the loop's thread and so stall the very
    transaction it waits for; this waits cooperatively instead, up to the busy timeout.
    """
    try:
        return attempt()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    deadline = time.monotonic() + connection.busy_timeout_s
    delay = 0.0005
    while True:
        await asyncio.sleep(delay)
        try:
            return attempt()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        delay = min(delay * 2, 0.02)


class Cursor:
    """An aiosqlite-shaped cursor; its coroutines suspend only while SQLite is busy."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        if (busy := _BUSY_PRAGMA.match(sql)) is not None:
            # The wait happens in ``_when_free``; SQLite itself must answer busy at once.
            self._connection.busy_timeout_s = int(busy.group(1)) / 1000
            sql = "PRAGMA busy_timeout=0"
        cursor = self._cursor
        if parameters is None:
            await _when_free(self._connection, lambda: cursor.execute(sql))
        else:
            await _when_free(self._connection, lambda: cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        rows = list(parameters)
        await _when_free(self._connection, lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class _NoThread:
    """SQLAlchemy marks aiosqlite's worker thread a daemon; there is none here."""

    daemon = True


class _RunNow:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set isolation."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class Connection:
    """An aiosqlite-shaped connection over one ``sqlite3`` connection on the loop's thread."""

    def __init__(self, database: Any, kwargs: dict[str, Any]) -> None:
        self._database = database
        self._kwargs = kwargs
        self._connection: sqlite3.Connection | None = None
        self.busy_timeout_s = 5.0
        self._thread = _NoThread()
        self._tx = _RunNow()

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        # The loop's thread opens and uses it; pooled connections stay on that thread.
        self._connection = sqlite3.connect(self._database, **self._kwargs)
        return self

    @property
    def _conn(self) -> sqlite3.Connection:
        assert self._connection is not None, "connection closed"
        return self._connection

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> Cursor:
        return Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        await _when_free(self, self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def run(self, sql: str, rows: list[Sequence[Any]]) -> list[Any]:
        """``sql`` once per parameter row (one ``executemany`` for several), past the cursor
        shim; the rows it returns (a ``RETURNING`` or a query: one parameter row)."""
        conn = self._conn
        if len(rows) == 1:
            return await _when_free(self, lambda: conn.execute(sql, rows[0]).fetchall())  # type: ignore[no-any-return]
        await _when_free(self, lambda: conn.executemany(sql, rows))
        return []


def connect(database: Any, **kwargs: Any) -> Connection:
    """Like ``aiosqlite.connect``: an awaitable connection."""
    kwargs.pop("check_same_thread", None)
    return Connection(database, kwargs)


class SQLiteDialect_inline(SQLiteDialect_aiosqlite):
    driver = DRIVER
    supports_statement_cache = True
    supports_server_side_cursors = False

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_aiosqlite_dbapi:
        import sys

        return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_inline")


def inline_url(url: str) -> str:
    """``sqlite+aiosqlite:///x.db`` -> ``sqlite+inline:///x.db``; other URLs unchanged."""
    prefix = "sqlite+aiosqlite:"
    return f"sqlite+{DRIVER}:" + url[len(prefix):] if url.startswith(prefix) else url
