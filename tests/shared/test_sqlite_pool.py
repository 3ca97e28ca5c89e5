"""A service's SQLite connections outlive a storm: requests that held connections at the same
time give them back to the pool, and the next storm reuses them instead of opening new ones."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from sqlalchemy import event, text

from tandem.db import Database


async def test_connections_held_at_once_are_reused_by_the_next_storm(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}")
    opened: list[object] = []
    event.listen(db.engine.sync_engine, "connect", lambda conn, _: opened.append(conn))
    reads = db.engine.execution_options(tandem_read_only=True)  # none waits for a lock
    at_once = 24  # a storm's worth of requests in flight, each waiting with its connection
    try:
        for _ in range(3):
            async with AsyncExitStack() as held:
                for _ in range(at_once):
                    conn = await held.enter_async_context(reads.connect())
                    assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        assert len(opened) == at_once
    finally:
        await db.dispose()
