"""Incidents, changes and deployments running together on one set of topics, each on its own
database (SQLite, then PostgreSQL), driven over HTTP: the module's tests share one wall and
keep independent by using service names of their own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select

from changes.config import MIGRATIONS_DIR as CHANGES_MIGRATIONS
from changes.config import ChangesSettings
from changes.main import create_app as create_changes
from deployments.config import MIGRATIONS_DIR as DEPLOYMENTS_MIGRATIONS
from deployments.config import DeploymentsSettings
from deployments.main import create_app as create_deployments
from incidents.config import MIGRATIONS_DIR as INCIDENTS_MIGRATIONS
from incidents.config import IncidentsSettings
from incidents.main import create_app as create_incidents
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    auth_headers,
    drop_pg_database,
    eventually,
    isolated_platform,
    new_database_url,
    TopicWatcher,
    running_service,
)


def unique(label: str = "svc") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


@dataclass
class Wall:
    """The three services, a client each, and their settings (a test may change a setting the
    service reads per request, e.g. the gate mode)."""

    platform: PlatformSettings
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    incidents: IncidentsSettings
    changes: ChangesSettings
    deployments: DeploymentsSettings

    def headers(self, role: str, sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def call(self, service: str, method: str, path: str, *, role: str = "viewer",
                   sub: str | None = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        r = await self.clients[service].request(
            method, path, headers={**self.headers(role, sub), **(headers or {})}, **kwargs)
        assert r.status_code == expect, f"{method} {service}{path}: {r.status_code} {r.text}"
        return r.json()

    async def row(self, service: str, table: Any, key: Any) -> Any:
        """A row of ``service``'s own database (to know a projection has caught up)."""
        async with self.apps[service].state.runtime.db.sessionmaker() as session:
            return (await session.scalars(select(table).where(table.id == key))).first()

    async def until(self, probe: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
        return await eventually(probe, timeout=timeout)


async def _database(stack: AsyncExitStack, name: str, directory: Path, backend: str,
                    migrations: Path) -> str:
    url, created = await new_database_url(backend, directory, name)
    if created is not None:
        stack.push_async_callback(drop_pg_database, created)
    upgrade(migrations, url)
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def wall(request: pytest.FixtureRequest, broker: EmbeddedBroker,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wall]:
    directory = tmp_path_factory.mktemp("wall")
    platform = isolated_platform(broker.bootstrap, directory)
    await ensure_topics(platform, platform.all_topics())
    async with AsyncExitStack() as stack:
        incidents = IncidentsSettings(
            database_url=await _database(stack, "incidents", directory, request.param,
                                         INCIDENTS_MIGRATIONS),
            sla_check_interval_s=0.2, **getattr(request.module, "INCIDENTS", {}))
        changes = ChangesSettings(
            database_url=await _database(stack, "changes", directory, request.param,
                                         CHANGES_MIGRATIONS), freeze_clock_interval_s=0.2)
        deployments = DeploymentsSettings(database_url=await _database(
            stack, "deployments", directory, request.param, DEPLOYMENTS_MIGRATIONS))
        apps: dict[str, FastAPI] = {
            "incidents": create_incidents(platform, incidents),
            "changes": create_changes(platform, changes),
            "deployments": create_deployments(platform, deployments),
        }
        clients = {name: await stack.enter_async_context(running_service(app))
                   for name, app in apps.items()}
        await eventually(lambda: all(c.started.is_set() for app in apps.values()
                                     for c in app.state.runtime.consumers), timeout=60)
        yield Wall(platform, clients, apps, incidents, changes, deployments)


async def events_about(wall: Wall, service: str, subject: str,
                       predicate: Callable[[list[Any]], bool], timeout: float = 30) -> list[Any]:
    """The events ``service`` published about ``subject``, once ``predicate`` holds for them."""
    async with TopicWatcher(wall.platform, wall.platform.topic(service)) as watcher:
        def mine(events: list[Any]) -> list[Any]:
            return [e for e in events if e.subject == subject]

        return mine(await watcher.wait_for(lambda evs: predicate(mine(evs)), timeout=timeout))
