"""Catalog test support: a running catalog with a client, a watcher of its topic, a producer
for the other services' events, and descriptors to import."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from catalog.config import MIGRATIONS_DIR, CatalogSettings
from catalog.main import create_app
from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    drop_pg_database,
    eventually,
    new_database_url,
    running_service,
)


def unique(label: str = "svc") -> str:
    """A name of the catalog's rule no other test uses."""
    return f"{label}-{uuid.uuid4().hex[:8]}"


def descriptors(service: str, dev: str, ops: str, *, tier: int = 1,
                members: tuple[list[str], list[str]] = (["alice", "ann"], ["oscar", "olga"]),
                extra: str = "") -> str:
    """A catalog-info.yaml: the developers' Group, the operations Group, a System and the
    Component that names them."""
    dev_members, ops_members = members
    return f"""\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: {dev}
  title: Payments developers
spec:
  type: team
  members: [{", ".join(f"user:default/{m}" for m in dev_members)}]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: {ops}
spec:
  type: team
  profile:
    displayName: Payments operations
  members: [{", ".join(ops_members)}]
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: {service}-system
spec:
  owner: group:{dev}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {service}
  title: Payments API
  description: Takes card payments.
  annotations:
    tandem.dev/tier: "{tier}"
    tandem.dev/operations-team: group:default/{ops}
    tandem.dev/runbook: https://runbooks.example.com/{service}
    pagerduty.com/service-id: PABC123
    github.com/project-slug: acme/{service}
  links:
    - url: https://grafana.example.com/d/{service}
      title: Dashboard
spec:
  type: service
  lifecycle: production
  owner: {dev}
  system: {service}-system
{extra}"""


@dataclass
class Catalog:
    """A running catalog service and what a test needs to talk to it and its topics."""

    client: httpx.AsyncClient
    platform: PlatformSettings
    settings: CatalogSettings
    watcher: TopicWatcher
    producer: AIOKafkaProducer
    url: str
    sequences: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str = "owner", sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def import_yaml(self, text: str, role: str = "owner",
                          **headers: str) -> httpx.Response:
        return await self.client.post("/api/v1/catalog/import", content=text.encode(),
                                      headers={**self.headers(role),
                                               "Content-Type": "application/yaml", **headers})

    async def get(self, path: str) -> dict[str, Any]:
        r = await self.client.get(path, headers=self.headers("viewer"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def publish(self, topic: str, type_: str, subject: str, data: dict[str, Any],
                      actor: str = "pat") -> CloudEvent:
        """Publish an event of another service onto its topic, as that service would."""
        seq = self.sequences[subject] = self.sequences.get(subject, 0) + 1
        event = new_event(service=topic, type=type_, subject=subject, sequence=seq,
                          actor=actor, data=data)
        await self.send(topic, event)
        return event

    async def send(self, topic: str, event: CloudEvent) -> None:
        await self.producer.send_and_wait(
            self.platform.topic(topic), value=event.to_bytes(), key=event.subject.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())])

    async def events_about(self, subject: str, until: Any = None,
                           timeout: float = 20.0) -> list[CloudEvent]:
        """The catalog's events about ``subject`` once ``until(events)`` holds."""
        def mine(evs: list[CloudEvent]) -> list[CloudEvent]:
            return [e for e in evs if e.subject == subject]
        check = until or (lambda evs: bool(evs))
        return mine(await self.watcher.wait_for(lambda evs: check(mine(evs)), timeout=timeout))


@asynccontextmanager
async def catalog_service(platform: PlatformSettings, directory: Path,
                          backend: str) -> AsyncIterator[Catalog]:
    """A migrated database and the catalog running over it, on ``backend``."""
    url, created = await new_database_url(backend, directory, "catalog")
    try:
        upgrade(MIGRATIONS_DIR, url)
        await ensure_topics(platform, platform.all_topics())
        settings = CatalogSettings(database_url=url)
        app = create_app(platform, settings)
        producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            async with running_service(app) as client, \
                    TopicWatcher(platform, platform.topic("catalog")) as watcher:
                await eventually(lambda: all(c.started.is_set()
                                             for c in app.state.runtime.consumers), timeout=30)
                yield Catalog(client, platform, settings, watcher, producer, url)
        finally:
            await producer.stop()
    finally:
        if created is not None:
            await drop_pg_database(created)


@asynccontextmanager
async def replica(svc: Catalog) -> AsyncIterator[httpx.AsyncClient]:
    """A second catalog process over the same database, in the same consumer group (the
    partitions of the other topics are shared between the two)."""
    app = create_app(svc.platform, CatalogSettings(database_url=svc.url))
    async with running_service(app) as client:
        await eventually(lambda: all(c.started.is_set() for c in app.state.runtime.consumers),
                         timeout=30)
        yield client
