"""Fixtures every test shares: the real embedded broker, per-test settings, real databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tandem.broker import EmbeddedBroker, free_port
from tandem.settings import PlatformSettings
from tandem.testing import create_pg_database, drop_pg_database


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    b = EmbeddedBroker(free_port(), log_path=log)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def platform(broker: EmbeddedBroker, tmp_path: Path) -> PlatformSettings:
    """Settings for one test: its own topics (unique prefix), files and secret."""
    return PlatformSettings(
        var_dir=tmp_path,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        auth_secret="test-secret-" + uuid.uuid4().hex,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_request_timeout_ms=5000,
        relay_poll_interval_s=0.2,
    )


NewDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def new_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[NewDatabase]:
    """Makes a fresh, empty database per call, on SQLite and (second run) on PostgreSQL."""
    created: list[str] = []

    async def make(service: str) -> str:
        if request.param == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / f'{service}-{uuid.uuid4().hex[:6]}.db'}"
        name = await create_pg_database()
        created.append(name)
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

    yield make
    for name in created:
        await drop_pg_database(name)
