"""Every service's migrations go all the way up, all the way down and up again, on SQLite and
PostgreSQL, and the schema they build is the one the code's tables describe."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import tandem.tables  # noqa: F401  (the platform tables, in SQLModel's metadata)
from tandem.migrations import downgrade, upgrade

STORED = ("incidents", "changes", "deployments", "catalog", "notifier")


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


@pytest.mark.parametrize("service", STORED)
async def test_migrations_go_up_down_and_up_again(service: str, new_database) -> None:
    config = importlib.import_module(f"{service}.config")
    url = await new_database(service)
    upgrade(config.MIGRATIONS_DIR, url)
    built = await _tables(url)
    for platform_table in ("outbox", "inbox", "subject_cursor", "idempotency_key",
                           "number_sequence", "dead_letter", "relay_mark"):
        assert platform_table in built
    downgrade(config.MIGRATIONS_DIR, url, "base")
    assert await _tables(url) == set()
    upgrade(config.MIGRATIONS_DIR, url)
    assert await _tables(url) == built


@pytest.mark.parametrize("service", STORED)
async def test_the_migrated_schema_is_the_one_the_tables_describe(service: str,
                                                                  new_database) -> None:
    """Nothing the code declares (a column, a type, nullability, an index) is missing from what
    the migrations build, nor the other way round."""
    config = importlib.import_module(f"{service}.config")
    models = importlib.import_module(f"{service}.models")
    url = await new_database(service)
    upgrade(config.MIGRATIONS_DIR, url)
    declared = sa.MetaData()
    service_tables = models.ServiceTable.metadata
    for table in [*SQLModel.metadata.tables.values(), *service_tables.tables.values()]:
        if table.name in _platform_and(service_tables):
            table.to_metadata(declared)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(lambda c: compare_metadata(
                MigrationContext.configure(c, opts={"compare_type": True}), declared))
    finally:
        await engine.dispose()
    assert differences == []


def _platform_and(metadata: sa.MetaData) -> set[str]:
    return {"outbox", "inbox", "subject_cursor", "idempotency_key", "number_sequence",
            "dead_letter", "relay_mark", "revoked_token", *metadata.tables}
