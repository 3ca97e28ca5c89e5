"""Tandem's test support: the test platform, services in-process, tokens, topic watchers and
fresh databases.

Used by the suite and the benchmarks only (no service image installs it); everything here talks
to the real broker and real databases.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from tandem.auth import Role, mint_token
from tandem.events import CloudEvent
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def isolated_platform(bootstrap: str, var_dir: Path, **overrides: Any) -> PlatformSettings:
    """Platform settings for one test (or module): its own topics (a unique prefix), files and
    secret on the given broker, and the short group timings the embedded broker needs in tests
    (broker notes: a join waits half the session timeout)."""
    settings: dict[str, Any] = {
        "var_dir": var_dir,
        "kafka_bootstrap": bootstrap,
        "topic_prefix": f"t{uuid.uuid4().hex[:10]}.",
        "auth_secret": "test-secret-" + uuid.uuid4().hex,
        "kafka_session_timeout_ms": 2000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_request_timeout_ms": 5000,
        "relay_poll_interval_s": 0.2,
    }
    return PlatformSettings(**{**settings, **overrides})


async def new_database_url(kind: str, var_dir: Path, service: str) -> tuple[str, str | None]:
    """A fresh, empty database for ``service``: a SQLite file under ``var_dir``, or a new
    PostgreSQL database (its name is returned too, for :func:`drop_pg_database`)."""
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{var_dir / f'{service}-{uuid.uuid4().hex[:6]}.db'}", None
    name = await create_pg_database()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}", name


async def migrated_database(stack: AsyncExitStack, service: str, var_dir: Path, kind: str,
                            migrations: Path) -> str:
    """A fresh database of ``kind`` with ``migrations`` applied; a PostgreSQL one is dropped
    when ``stack`` closes."""
    from tandem.migrations import upgrade

    url, created = await new_database_url(kind, var_dir, service)
    if created is not None:
        stack.push_async_callback(drop_pg_database, created)
    upgrade(migrations, url)
    return url


def auth_headers(
    platform: PlatformSettings, role: Role | str, sub: str | None = None
) -> dict[str, str]:
    token = mint_token(
        platform.jwt_secret, sub=sub or f"{role}-user", role=role, ttl=timedelta(hours=1)
    )
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running_service(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan running (relay, consumers), and an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tandem.test") as client:
            yield client


async def create_pg_database() -> str:
    name = f"tandem_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class TopicWatcher:
    """Reads a topic from the beginning (no group) and collects the Tandem events on it."""

    def __init__(self, platform: PlatformSettings, topic: str) -> None:
        self.platform = platform
        self.topic = topic
        self.records: list[tuple[int, int, bytes | None, list[tuple[str, bytes]]]] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> TopicWatcher:
        await ensure_topics(self.platform, [self.topic])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.platform.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
        )
        try:
            await consumer.start()
            tps = [TopicPartition(self.topic, p) for p in range(self.platform.topic_partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def poll(self) -> None:
        assert self._consumer is not None
        batches = await self._consumer.getmany(timeout_ms=100)
        for records in batches.values():
            for r in records:
                self.records.append((r.partition, r.offset, r.value, list(r.headers or [])))

    def events(self) -> list[CloudEvent]:
        out = []
        for _, _, value, _ in self.records:
            try:
                out.append(CloudEvent.from_bytes(value or b""))
            except ValueError:
                continue
        return out

    async def wait_for(
        self, predicate: Callable[[list[CloudEvent]], bool], timeout: float = 20.0
    ) -> list[CloudEvent]:
        """Poll until ``predicate(events)`` holds; a generous bound only a broken path misses."""
        deadline = time.monotonic() + timeout
        while True:
            await self.poll()
            events = self.events()
            if predicate(events):
                return events
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: condition not met; saw {len(events)} events")


async def eventually(
    check: Callable[[], object], timeout: float = 20.0, interval: float = 0.05
) -> object:
    """Call ``check`` (plain or async) until it returns a truthy value or the generous
    deadline passes."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise TimeoutError(f"condition not met in {timeout}s; last value {last!r}")


def drill_collection(here: Path, env_var: str) -> Callable[[Path, Any], bool | None]:
    """A ``pytest_ignore_collect`` hook for a test folder that is a CI step of its own (a
    drill, a fuzz run): its tests are collected only when the folder is named on the command
    line (``pytest tests/faults``) or with ``env_var=1``, so ``make test`` leaves them out."""
    import os

    def named(config: Any) -> bool:
        for arg in config.args:
            path = Path(arg.split("::", 1)[0]).resolve()
            if path == here or here in path.parents:
                return True
        return False

    def pytest_ignore_collect(collection_path: Path, config: Any) -> bool | None:
        if collection_path.resolve() == here / "conftest.py":
            return None
        if os.environ.get(env_var) == "1" or named(config):
            return None
        return True

    return pytest_ignore_collect
