"""Revision 0002 on a database holding deployments: the counter becomes ``version`` and the
software's version ``software_version`` with their values, the outbox gains its sequence, and
the downgrade gives the first shape back (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from deployments.config import MIGRATIONS_DIR
from tandem.db import JSONType, UTCDateTime
from tandem.migrations import upgrade

NOW = datetime(2026, 3, 1, 10, tzinfo=UTC)
#: The deployment table as revision 0001 made it (its required columns).
FIRST_SHAPE = sa.table(
    "deployment", *(sa.column(name, type_) for name, type_ in {
        "id": sa.Uuid(), "number": sa.String(), "service": sa.String(),
        "environment": sa.String(), "version": sa.String(), "commits": JSONType,
        "triggered_by": sa.String(), "status": sa.String(), "gate_decision": sa.String(),
        "gate_reasons": JSONType, "gate_mode": sa.String(), "gate_decided_at": UTCDateTime(),
        "gate_history": JSONType, "change_requested": sa.Boolean(), "rework": sa.Boolean(),
        "revision": sa.Integer(), "created_at": UTCDateTime(), "updated_at": UTCDateTime(),
    }.items()))


async def _run(url: str, statement: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(statement)
            return list(result.mappings().all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def _columns(url: str, table: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns(table)})
    finally:
        await engine.dispose()


def _downgrade(url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.downgrade(cfg, revision)


async def test_0002_renames_with_the_values_and_downgrades(new_database: Any) -> None:
    url = await new_database("deployments")
    upgrade(MIGRATIONS_DIR, url, "0001")
    await _run(url, sa.insert(FIRST_SHAPE).values(
        id=uuid.uuid4(), number="DEP0000001", service="api", environment="production",
        version="2026.3-rc1", commits=[], triggered_by="ci", status="requested",
        gate_decision="allowed", gate_reasons=[], gate_mode="receipt", gate_decided_at=NOW,
        gate_history=[], change_requested=False, rework=False, revision=7, created_at=NOW,
        updated_at=NOW))

    upgrade(MIGRATIONS_DIR, url)
    assert {"software_version", "version"} <= await _columns(url, "deployment")
    assert "revision" not in await _columns(url, "deployment")
    assert "sequence" in await _columns(url, "outbox")
    [row] = await _run(url, sa.text("SELECT software_version, version FROM deployment"))
    assert (row["software_version"], row["version"]) == ("2026.3-rc1", 7)

    await asyncio.to_thread(_downgrade, url, "0001")
    assert {"version", "revision"} <= await _columns(url, "deployment")
    assert "software_version" not in await _columns(url, "deployment")
    assert "sequence" not in await _columns(url, "outbox")
    [row] = await _run(url, sa.text("SELECT version, revision FROM deployment"))
    assert (row["version"], row["revision"]) == ("2026.3-rc1", 7)

    upgrade(MIGRATIONS_DIR, url)
    [row] = await _run(url, sa.text("SELECT software_version, version FROM deployment"))
    assert (row["software_version"], row["version"]) == ("2026.3-rc1", 7)
