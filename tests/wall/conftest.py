"""Incidents, changes and deployments running together on one set of topics, each on its own
database (SQLite, then PostgreSQL), driven over HTTP: a module's tests share one wall and keep
independent by using service names of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio
from fastapi import FastAPI
from wall_support import Wall

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
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    eventually,
    isolated_platform,
    migrated_database,
    running_service,
)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def wall(request: pytest.FixtureRequest, broker: EmbeddedBroker,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wall]:
    directory = tmp_path_factory.mktemp("wall")
    platform = isolated_platform(broker.bootstrap, directory)
    await ensure_topics(platform, platform.all_topics())
    async with AsyncExitStack() as stack:
        incidents = IncidentsSettings(
            database_url=await migrated_database(stack, "incidents", directory, request.param,
                                         INCIDENTS_MIGRATIONS),
            sla_check_interval_s=0.2, **getattr(request.module, "INCIDENTS", {}))
        changes = ChangesSettings(
            database_url=await migrated_database(stack, "changes", directory, request.param,
                                         CHANGES_MIGRATIONS), freeze_clock_interval_s=0.2)
        deployments = DeploymentsSettings(database_url=await migrated_database(
            stack, "deployments", directory, request.param, DEPLOYMENTS_MIGRATIONS),
            **getattr(request.module, "DEPLOYMENTS", {}))
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
