"""One running deployments service per database per module, fed by events the tests publish.

Starting the service (consumer group join included) costs about two seconds, so the HTTP and
event tests of a module share one instance per database; each test uses its own service names,
so tests stay independent of each other and of their order.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from deployments.gate import GateMode
from deployments.main import create_app
from fastapi import FastAPI
from tandem.broker import EmbeddedBroker
from tandem.events import new_event
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem.testing import (
    TopicWatcher,
    auth_headers,
    create_pg_database,
    drop_pg_database,
    eventually,
    running_service,
)


def module_platform(broker: EmbeddedBroker, var_dir: Path) -> PlatformSettings:
    """Settings like the shared ``platform`` fixture's, for a module-scoped service."""
    return PlatformSettings(
        var_dir=var_dir,
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        auth_secret="test-secret-" + uuid.uuid4().hex,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_request_timeout_ms=5000,
        relay_poll_interval_s=0.2,
    )


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass
class Stack:
    """A running deployments service, a client for it, and the test's view of the topics."""

    platform: PlatformSettings
    settings: DeploymentsSettings
    app: FastAPI
    client: httpx.AsyncClient
    watcher: TopicWatcher
    producer: AIOKafkaProducer
    sequences: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str = "pipeline", **extra: str) -> dict[str, str]:
        return {**auth_headers(self.platform, role), **extra}

    async def publish(self, topic: str, type_: str, subject: uuid.UUID,
                      data: dict[str, Any]) -> None:
        """Publish an event as the owning service would (key = subject, rising sequence)."""
        seq = self.sequences[str(subject)] = self.sequences.get(str(subject), 0) + 1
        event = new_event(service=topic, type=type_, subject=subject, sequence=seq,
                          actor="manager-user", data=data)
        await self.producer.send_and_wait(
            self.platform.topic(topic), value=event.to_bytes(), key=str(subject).encode(),
            headers=[("content-type", b"application/cloudevents+json")])

    async def change(self, change: dict[str, Any], verb: str = "created",
                     **facts: Any) -> None:
        await self.publish("changes", f"tandem.change.{verb}", change["id"],
                           {"change": {k: (iso(v) if isinstance(v, datetime) else
                                           (str(v) if isinstance(v, uuid.UUID) else v))
                                       for k, v in change.items()}, **facts})

    async def freeze(self, freeze: dict[str, Any], verb: str = "created") -> None:
        await self.publish("changes", f"tandem.freeze.{verb}", freeze["id"],
                           {"freeze": {k: (iso(v) if isinstance(v, datetime) else
                                           (str(v) if isinstance(v, uuid.UUID) else v))
                                       for k, v in freeze.items()}})

    async def incident(self, incident: dict[str, Any], verb: str = "created",
                       **facts: Any) -> None:
        await self.publish("incidents", f"tandem.incident.{verb}", incident["id"],
                           {"incident": {k: (iso(v) if isinstance(v, datetime) else
                                             (str(v) if isinstance(v, uuid.UUID) else v))
                                         for k, v in incident.items()}, **facts})

    async def deploy(self, service: str, *, environment: str = "production",
                     expect: int = 201, **body: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/deployments", headers=self.headers(), json={
            "service": service, "environment": environment, "version": "1.0.0", **body})
        assert r.status_code == expect, r.text
        return r.json()  # type: ignore[no-any-return]

    async def get(self, ref: str) -> dict[str, Any]:
        r = await self.client.get(f"/api/v1/deployments/{ref}", headers=self.headers("viewer"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def projected(self, table: type, id_: uuid.UUID, check: Any = None) -> Any:
        """Wait until the service's projection row ``id_`` exists (and passes ``check``)."""
        async def seen() -> Any:
            async with self.app.state.db.sessionmaker() as session:
                row = await session.get(table, id_)
                return row if row is not None and (check is None or check(row)) else None
        return await eventually(seen)


def service_name() -> str:
    """A service name no other test uses (projections are per service)."""
    return f"svc-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(broker: EmbeddedBroker, db_kind: str,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    var_dir = tmp_path_factory.mktemp("deployments")
    platform = module_platform(broker, var_dir)
    pg_name = None
    if db_kind == "sqlite":
        url = f"sqlite+aiosqlite:///{var_dir / 'deployments.db'}"
    else:
        pg_name = await create_pg_database()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
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
def gate_mode(stack: Stack, request: pytest.FixtureRequest) -> GateMode:
    """The gate mode for one test (``@pytest.mark.parametrize('gate_mode', ..., indirect)``)."""
    mode = GateMode(getattr(request, "param", "receipt"))
    before = stack.settings.gate_mode
    stack.settings.gate_mode = mode
    request.addfinalizer(lambda: setattr(stack.settings, "gate_mode", before))
    return mode
