"""One running deployments service per database per module, fed by events the tests publish.

Starting the service (consumer group join included) costs about two seconds, so the HTTP and
event tests of a module share one instance per database; each test uses its own service names,
so tests stay independent of each other and of their order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from deployments_support import Stack

from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from deployments.main import create_app
from deployments.rules.gate import GateMode
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    TopicWatcher,
    drop_pg_database,
    eventually,
    isolated_platform,
    new_database_url,
    running_service,
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(broker: EmbeddedBroker, db_kind: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    var_dir = tmp_path_factory.mktemp("deployments")
    platform = isolated_platform(broker.bootstrap, var_dir)
    url, pg_name = await new_database_url(db_kind, var_dir, "deployments")
    try:
        upgrade(MIGRATIONS_DIR, url)
        await ensure_topics(platform, [platform.topic(t)
                                       for t in ("changes", "incidents", "deployments")])
        settings = DeploymentsSettings(database_url=url)
        app = create_app(platform, settings)
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with running_service(app) as client, \
                    TopicWatcher(platform, platform.topic("deployments")) as watcher:
                consumers = app.state.runtime.consumers
                await eventually(lambda: _started(consumers), timeout=30)
                yield Stack(platform, settings, app, client, watcher, producer)
        finally:
            await producer.stop()
    finally:
        if pg_name:
            await drop_pg_database(pg_name)


async def _started(consumers: list[Any]) -> bool:
    return all(c.started.is_set() for c in consumers)


@pytest.fixture
def gate_mode(stack: Stack, request: pytest.FixtureRequest) -> Iterator[GateMode]:
    """The gate mode for one test (``@pytest.mark.parametrize('gate_mode', ..., indirect)``)."""
    mode = GateMode(getattr(request, "param", "receipt"))
    before = stack.settings.gate_mode
    stack.settings.gate_mode = mode
    yield mode
    stack.settings.gate_mode = before
