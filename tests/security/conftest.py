"""Security suite fixtures: each service app once per module (SQLite; PostgreSQL where named)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from apps_under_test import ALL, STORED, Running, running

from tandem_cli.broker import EmbeddedBroker


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=ALL)
async def service(request: pytest.FixtureRequest, broker: EmbeddedBroker,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One running app per service, on SQLite."""
    async with running(request.param, broker, tmp_path_factory.mktemp(request.param)) as svc:
        yield svc


@pytest_asyncio.fixture(scope="module", loop_scope="module",
                        params=[(n, b) for b in ("sqlite", "postgresql") for n in STORED],
                        ids=lambda p: f"{p[0]}-{p[1]}")
async def stored(request: pytest.FixtureRequest, broker: EmbeddedBroker,
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """One running app per service with a database, on SQLite and on PostgreSQL."""
    name, backend = request.param
    async with running(name, broker, tmp_path_factory.mktemp(name), backend) as svc:
        yield svc
