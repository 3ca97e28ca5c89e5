"""A changes service per test module and database (SQLite, then PostgreSQL) on the real broker.

Tests in a module share the running service and keep independent by using their own service
names; starting it once per module keeps the suite inside its time budget.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from changes_support import ChangesService

from changes.config import MIGRATIONS_DIR, ChangesSettings
from changes.main import create_app
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    TopicWatcher,
    drop_pg_database,
    isolated_platform,
    new_database_url,
    running_service,
)


@pytest.fixture(scope="module")
def changes_platform(broker: EmbeddedBroker,
                     tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    return isolated_platform(broker.bootstrap, tmp_path_factory.mktemp("changes"))


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, changes_platform: PlatformSettings,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChangesService]:
    url, pg_name = await new_database_url(request.param, tmp_path_factory.mktemp("db"),
                                          "changes")
    # Each database gets its own topics, so the two runs of a module never see each other.
    platform = changes_platform.model_copy(
        update={"topic_prefix": f"{changes_platform.topic_prefix}{request.param}."})
    try:
        upgrade(MIGRATIONS_DIR, url)
        settings = ChangesSettings(
            database_url=url, freeze_clock_interval_s=0.2,
            required_approvals=getattr(request.module, "REQUIRED_APPROVALS", 1))
        app = create_app(platform, settings)
        await ensure_topics(platform, platform.all_topics())
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with running_service(app) as client, \
                    TopicWatcher(platform, platform.topic("changes")) as watcher:
                yield ChangesService(client, platform, app, watcher, producer)
        finally:
            await producer.stop()
    finally:
        if pg_name:
            await drop_pg_database(pg_name)
