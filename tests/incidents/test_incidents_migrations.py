"""The incidents migrations go up and down on SQLite and PostgreSQL, keeping the data."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from incidents.config import MIGRATIONS_DIR
from tandem.migrations import upgrade


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


async def _columns(url: str, table: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: {col["name"] for col in sa.inspect(c).get_columns(table)})
    finally:
        await engine.dispose()


async def _execute(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await engine.dispose()


async def test_revision_0002_upgrades_and_downgrades(new_database: Any) -> None:
    url = await new_database("incidents")
    upgrade(MIGRATIONS_DIR, url, "0001")
    deployment = uuid.uuid4()
    await _execute(url, "INSERT INTO deployment_view (id, number, service, environment, "
                        "version, status, updated_at) VALUES (:id, 'DEP0000001', 'api', "
                        "'production', '1.2.3', 'succeeded', CURRENT_TIMESTAMP)",
                   id=deployment.hex if "sqlite" in url else deployment)

    upgrade(MIGRATIONS_DIR, url)
    assert "sequence" in await _columns(url, "outbox")
    view = await _columns(url, "deployment_view")
    assert "software_version" in view and "version" not in view
    assert await _execute(url, "SELECT software_version FROM deployment_view") == [("1.2.3",)]

    # Alembic runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(command.downgrade, _alembic(url), "0001")
    assert "sequence" not in await _columns(url, "outbox")
    view = await _columns(url, "deployment_view")
    assert "version" in view and "software_version" not in view
    assert await _execute(url, "SELECT version FROM deployment_view") == [("1.2.3",)]

    upgrade(MIGRATIONS_DIR, url)
    assert "software_version" in await _columns(url, "deployment_view")
