"""The changes migrations go up and down on SQLite and PostgreSQL: revision 0002 gives the
outbox each event's sequence, unique per aggregate, and takes it away again."""

from __future__ import annotations

import threading
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from changes.config import MIGRATIONS_DIR
from tandem.db import utcnow
from tandem.migrations import upgrade
from tandem.tables import OutboxMessage

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


def downgrade(url: str, revision: str) -> None:
    """Alembic's downgrade in a thread of its own (its env runs its own event loop)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.downgrade(cfg, revision)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def outbox_row(aggregate_id: str, sequence: int | None) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uuid.uuid4(), "topic": "tandem.changes", "aggregate_type": "change",
        "aggregate_id": aggregate_id, "event_type": "tandem.change.created",
        "payload": b"{}", "created_at": utcnow(), "attempts": 0}
    if sequence is not None:
        row["sequence"] = sequence
    return row


async def outbox_columns(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns("outbox")})
    finally:
        await engine.dispose()


async def insert_outbox(url: str, *rows: dict[str, object]) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(OUTBOX), list(rows))
    finally:
        await engine.dispose()


async def test_revision_0002_adds_the_outbox_sequence_and_its_downgrade_removes_it(
        new_database) -> None:  # type: ignore[no-untyped-def]
    url = await new_database("changes")
    upgrade(MIGRATIONS_DIR, url)
    assert "sequence" in await outbox_columns(url)
    aggregate = str(uuid.uuid4())
    await insert_outbox(url, outbox_row(aggregate, 1), outbox_row(aggregate, 2))
    with pytest.raises(IntegrityError):
        await insert_outbox(url, outbox_row(aggregate, 2))

    downgrade(url, "0001")
    assert "sequence" not in await outbox_columns(url)
    await insert_outbox(url, outbox_row(aggregate, None))  # rows kept, sequence gone

    upgrade(MIGRATIONS_DIR, url)
    assert "sequence" in await outbox_columns(url)
