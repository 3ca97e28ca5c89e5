"""Prepared statements (``tandem.db.Prepared``): what a hot path writes through them is stored
exactly as SQLAlchemy stores it, reads come back typed, and a violated constraint is the same
``IntegrityError`` a caller already handles (SQLite and PostgreSQL, and SQLite over aiosqlite,
where the statement runs through Core)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from tandem.db import Database, JSONType, Prepared, UTCDateTime
from tandem_testing import drop_pg_database, new_database_url

metadata = MetaData()
things = Table(
    "thing", metadata,
    Column("n", Integer, primary_key=True), Column("id", Uuid, nullable=False),
    Column("facts", JSONType, nullable=True), Column("at", UTCDateTime, nullable=True),
    Column("live", Boolean, nullable=False), Column("payload", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),
)
ADD = Prepared(insert(things))
LIVE = Prepared(select(things.c.n, things.c.id, things.c.facts, things.c.at)
                .where(things.c.status.in_(("open", "acknowledged")),
                       things.c.n >= bindparam("from_n"))
                .order_by(things.c.n))
BUMP = Prepared(update(things).where(things.c.n == bindparam("which"))
                .values(n=things.c.n + bindparam("by")).returning(things.c.n))
#: No microseconds: SQLite's own datetime adapter would store it shorter than SQLAlchemy does.
AT = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)


def thing(n: int, status: str = "open", **overrides: object) -> dict[str, object]:
    return {"n": n, "id": uuid.UUID(int=n), "facts": {"n": n, "tags": ["a"]}, "at": AT,
            "live": True, "payload": b"\x00\x01", "status": status, **overrides}


@pytest.fixture(params=["inline", "aiosqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database: SQLite on the inline driver (the prepared path), SQLite over
    aiosqlite and PostgreSQL (both through Core)."""
    kind = "postgresql" if request.param == "postgresql" else "sqlite"
    url, name = await new_database_url(kind, tmp_path, "prepared")
    db = Database(url, topic="t", sqlite_inline=request.param != "aiosqlite")
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield db
    await db.dispose()
    if name is not None:
        await drop_pg_database(name)


async def test_prepared_rows_are_stored_as_core_stores_them(database: Database) -> None:
    async with database.transaction() as session:
        await ADD.run(session, thing(1))
        await ADD.run(session, [thing(3, facts=None, at=None), thing(4, status="resolved")])
        connection = await session.connection()
        await connection.execute(insert(things), [
            thing(2, id=uuid.UUID(int=1), facts={"n": 1, "tags": ["a"]}),
            thing(5, id=uuid.UUID(int=3), facts=None, at=None)])
    async with database.engine.connect() as connection:
        stored = {r[0]: r[1:] for r in (await connection.exec_driver_sql(
            "SELECT n, id, facts, at, live, payload, status FROM thing")).all()}
    assert stored[1] == stored[2]  # the same row through Prepared and through Core
    assert stored[3] == stored[5]  # NULLs and JSON null alike
    assert stored[4][-1] == "resolved"


async def test_prepared_reads_come_back_typed_with_fixed_in_lists(database: Database) -> None:
    async with database.transaction() as session:
        await ADD.run(session, [thing(1), thing(2, status="acknowledged"),
                                thing(3, status="resolved"), thing(4, facts=None, at=None)])
    async with database.transaction(read_only=True) as session:
        rows = await LIVE.run(session, {"from_n": 2})
    assert [(r.n, r.id, r.facts, r.at) for r in rows] == [
        (2, uuid.UUID(int=2), {"n": 2, "tags": ["a"]}, AT),
        (4, uuid.UUID(int=4), None, None),
    ]
    assert rows[0].at.tzinfo is not None


async def test_prepared_returning_and_constraint_errors(database: Database) -> None:
    async with database.transaction() as session:
        await ADD.run(session, thing(1))
        assert [r.n for r in await BUMP.run(session, {"which": 1, "by": 41})] == [42]
        assert await BUMP.run(session, {"which": 7, "by": 1}) == []
    with pytest.raises(IntegrityError):
        async with database.transaction() as session:
            await ADD.run(session, thing(42))
    async with database.begin() as connection:  # a Core connection's transaction too
        await ADD.run(connection, thing(43))

    async def add_a_new_and_a_taken_one() -> None:
        async with database.begin() as connection:
            await ADD.run(connection, thing(44))
            await ADD.run(connection, thing(43))

    with pytest.raises(IntegrityError):
        await add_a_new_and_a_taken_one()  # rolled back whole: 44 is not kept
    async with database.engine.connect() as connection:
        assert (await connection.execute(select(things.c.n))).scalars().all() == [42, 43]
