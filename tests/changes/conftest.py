"""A changes service per test module and database (SQLite, then PostgreSQL) on the real broker.

Tests in a module share the running service and keep independent by using their own service
names; starting it once per module keeps the suite inside its time budget.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from changes_support import ChangesService

from changes.config import MIGRATIONS_DIR, ChangesSettings
from changes.main import create_app
from tandem.broker import EmbeddedBroker
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem.testing import TopicWatcher, create_pg_database, drop_pg_database, running_service


@pytest.fixture(scope="module")
def changes_platform(broker: EmbeddedBroker,
                     tmp_path_factory: pytest.TempPathFactory) -> PlatformSettings:
    return PlatformSettings(
        var_dir=tmp_path_factory.mktemp("changes"),
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        auth_secret="test-secret-" + uuid.uuid4().hex,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_request_timeout_ms=5000,
        relay_poll_interval_s=0.2,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, changes_platform: PlatformSettings,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ChangesService]:
    pg_name = None
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "changes.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        pg_name = await create_pg_database()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    # Each database gets its own topics, so the two runs of a module never see each other.
    platform = changes_platform.model_copy(
        update={"topic_prefix": f"{changes_platform.topic_prefix}{request.param}."})
    upgrade(MIGRATIONS_DIR, url)
    settings = ChangesSettings(database_url=url, freeze_clock_interval_s=0.2,
                               required_approvals=getattr(request.module, "REQUIRED_APPROVALS",
                                                          1))
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
        if pg_name:
            await drop_pg_database(pg_name)
