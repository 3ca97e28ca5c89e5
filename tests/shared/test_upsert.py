"""``tandem.db.upsert``: the one-statement projection write, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select

from tandem.db import Database, UTCDateTime, upsert

metadata = MetaData()
views = Table("projection_view", metadata,
              Column("id", Integer, primary_key=True),
              Column("status", String(16), nullable=False),
              Column("first_seen_at", UTCDateTime, nullable=True),
              Column("updated_at", DateTime(timezone=True), nullable=False))


async def test_upsert_inserts_then_updates_and_keeps_the_first_value_of_kept_columns(
        new_database) -> None:  # type: ignore[no-untyped-def]
    db = Database(await new_database("views"))
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

        async def write(status: str, first_seen_at: datetime | None, at: datetime) -> None:
            async with db.transaction() as session:
                await upsert(session, views, {"id": 7, "status": status,
                                              "first_seen_at": first_seen_at, "updated_at": at},
                             keep=("first_seen_at",))

        async def row() -> tuple[str, datetime | None]:
            async with db.transaction(read_only=True) as session:
                found = (await session.execute(
                    select(views.c.status, views.c.first_seen_at))).all()
            assert len(found) == 1
            return found[0][0], found[0][1]

        await write("requested", None, t0)
        assert await row() == ("requested", None)
        await write("in_progress", t0 + timedelta(minutes=1), t0 + timedelta(minutes=1))
        assert await row() == ("in_progress", t0 + timedelta(minutes=1))
        # A later value never replaces the first one; the other columns follow every write.
        await write("failed", t0 + timedelta(minutes=5), t0 + timedelta(minutes=5))
        assert await row() == ("failed", t0 + timedelta(minutes=1))
        await write("rolled_back", None, t0 + timedelta(minutes=6))
        assert await row() == ("rolled_back", t0 + timedelta(minutes=1))
    finally:
        await db.dispose()
