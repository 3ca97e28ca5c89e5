"""Fixtures every test shares: the real embedded broker, per-test settings, real databases."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import drop_pg_database, isolated_platform, new_database_url

# A developer's own CLI configuration (profiles, tokens) never reaches the tests' commands.
os.environ["TANDEM_CONFIG"] = os.devnull
os.environ.pop("TANDEM_PROFILE", None)


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
    return isolated_platform(broker.bootstrap, tmp_path)


NewDatabase = Callable[[str], Awaitable[str]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def new_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[NewDatabase]:
    """Makes a fresh, empty database per call, on SQLite and (second run) on PostgreSQL."""
    created: list[str] = []

    async def make(service: str) -> str:
        url, name = await new_database_url(request.param, tmp_path, service)
        if name is not None:
            created.append(name)
        return url

    yield make
    for name in created:
        await drop_pg_database(name)
