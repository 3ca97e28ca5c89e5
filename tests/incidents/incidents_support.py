"""Incidents test support: a running service with a client, a topic watcher and a producer."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from incidents.main import create_app
from tandem.events import CloudEvent, new_event
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    drop_pg_database,
    eventually,
    isolated_platform,
    new_database_url,
    running_service,
)

ROUTING_KEY = "e93facc04764012d7bfb002500d5d1a6"
#: The routing keys in PagerDuty's documentation examples, mapped to Tandem services.
ROUTING_KEYS = f"{ROUTING_KEY}=checkout,samplekeyhere=checkout,stagingkey=search@staging"


def unique_service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


@dataclass
class Running:
    """A running incidents service with its settings, an HTTP client and a topic watcher."""

    client: httpx.AsyncClient
    platform: PlatformSettings
    settings: IncidentsSettings
    watcher: TopicWatcher
    url: str
    producer: AIOKafkaProducer

    def headers(self, role: str = "practitioner", sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def create(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "Checkout errors", "service": unique_service(),
                "environment": "production", "impact": 2, "urgency": 2, **fields}
        r = await self.client.post("/api/v1/incidents", json=body, headers=self.headers())
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    async def move(self, incident: dict[str, Any], to: str, role: str = "practitioner",
                   **fields: Any) -> httpx.Response:
        return await self.client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                                      json={"to": to, **fields}, headers=self.headers(role))

    async def publish(self, topic: str, event: CloudEvent) -> None:
        """Send another service's event onto its topic, keyed by subject."""
        await self.producer.send_and_wait(self.platform.topic(topic), value=event.to_bytes(),
                                          key=event.subject.encode(),
                                          headers=[("content-type",
                                                    b"application/cloudevents+json")])

    async def events_about(self, subject: str, until: Any = None,
                           timeout: float = 20.0) -> list[CloudEvent]:
        """The events published about ``subject`` once ``until(events)`` holds."""
        def mine(evs: list[CloudEvent]) -> list[CloudEvent]:
            return [e for e in evs if e.subject == subject]
        check = until or (lambda evs: bool(evs))
        events = await self.watcher.wait_for(lambda evs: check(mine(evs)), timeout=timeout)
        return mine(events)


def deployment(service: str, *, environment: str = "production", status: str = "requested",
               started: datetime | None = None, change_id: str | None = None,
               software_version: str | None = "1.4.2") -> dict[str, Any]:
    """A deployment snapshot as ``tandem.deployments`` publishes it: ``version`` is its
    counter, ``software_version`` what it deploys (absent from events that predate it)."""
    snapshot = {"id": str(uuid.uuid4()), "number": f"DEP{uuid.uuid4().int % 10**7:07d}",
                "service": service, "environment": environment, "version": 1,
                "commits": [{"sha": "a" * 40, "committed_at": "2026-01-01T00:00:00Z"}],
                "change_id": change_id, "status": status,
                "gate": {"decision": "allowed", "reasons": [], "change_id": change_id,
                         "mode": "receipt"},
                "started_at": started.isoformat() if started else None, "finished_at": None}
    if software_version is not None:
        snapshot["software_version"] = software_version
    return snapshot


async def run_deployment(svc: Running, d: dict[str, Any], *moves: str) -> None:
    """Publish a deployment's created event, then one transitioned event per move."""
    await svc.publish("deployments", deployment_event("tandem.deployment.created", sequence=1,
                                                      deployment=d))
    before = d["status"]
    for n, to in enumerate(moves, start=2):
        d = {**d, "status": to, "version": n}
        await svc.publish("deployments", deployment_event(
            "tandem.deployment.transitioned", sequence=n, deployment=d,
            **{"from": before, "to": to, "reason": f"pipeline says {to}"}))
        before = to


def deployment_event(type_: str, *, sequence: int, deployment: dict[str, Any],
                     **facts: Any) -> CloudEvent:
    return new_event(service="deployments", type=type_, subject=deployment["id"],
                     sequence=sequence, actor="pipeline-ci", data={"deployment": deployment,
                                                                   **facts})


def change_event(type_: str, *, sequence: int, change: dict[str, Any],
                 **facts: Any) -> CloudEvent:
    return new_event(service="changes", type=type_, subject=change["id"], sequence=sequence,
                     actor="change-manager", data={"change": change, **facts})


class CatalogFeed:
    """The catalog's events about services, as ``tandem.catalog`` would carry them."""

    def __init__(self, svc: Running) -> None:
        self.svc = svc
        self.services: dict[str, dict[str, Any]] = {}

    async def service(self, name: str, *, owner: str | None, operations: str | None,
                      tier: int | None = 1) -> dict[str, Any]:
        known = self.services.get(name)
        snapshot = {"id": known["id"] if known else str(uuid.uuid4()),
                    "number": "SVC0000001", "name": name, "tier": tier,
                    "owner_team": owner, "operations_team": operations,
                    "unowned": owner is None, "version": (known["version"] + 1) if known else 1}
        self.services[name] = snapshot
        verb = "updated" if known else "created"
        await self.svc.publish("catalog", new_event(
            service="catalog", type=f"tandem.service.{verb}", subject=snapshot["id"],
            sequence=snapshot["version"], actor="olivia-owner",
            data={"service": snapshot, **({"changes": {}} if known else {})}))
        return snapshot


async def known_as_run_by(svc: Running, service: str, team: str) -> None:
    """Once the catalog's word that ``team`` runs ``service`` is applied (metrics by team
    count the service)."""
    async def check() -> bool:
        r = await svc.client.get("/api/v1/incident-metrics", params={"team": team},
                                 headers=svc.headers("viewer"))
        return service in (r.json()["services"] or [])
    await eventually(check)


@asynccontextmanager
async def incidents_service(broker: EmbeddedBroker, directory: Path, backend: str,
                            **settings: Any) -> AsyncIterator[Running]:
    """A migrated database and the running service over it, on ``backend``."""
    async with migrated_database(broker, directory, backend) as (url, platform), \
            replica(broker, platform, url, **settings) as running:
        yield running


@asynccontextmanager
async def migrated_database(broker: EmbeddedBroker, directory: Path, backend: str,
                            ) -> AsyncIterator[tuple[str, PlatformSettings]]:
    """A migrated incidents database on ``backend`` (dropped afterwards) and platform settings
    of its own on ``broker``: the ground for one or more :func:`replica` over it."""
    url, created = await new_database_url(backend, directory, "incidents")
    try:
        upgrade(MIGRATIONS_DIR, url)
        yield url, isolated_platform(broker.bootstrap, directory)
    finally:
        if created is not None:
            await drop_pg_database(created)


async def s2_of(svc: Running, service: str) -> dict[str, Any]:
    """The one incident a failed deployment of ``service`` opened (S2), once it is listed."""
    async def opened() -> Any:
        r = await svc.client.get("/api/v1/incidents", params={"service": service,
                                                              "source": "deployment"},
                                 headers=svc.headers("viewer"))
        return r.json()["items"]

    [incident] = await eventually(opened)  # type: ignore[misc]
    return incident  # type: ignore[no-any-return]


@asynccontextmanager
async def replica(broker: EmbeddedBroker, platform: PlatformSettings, url: str,
                  **settings: Any) -> AsyncIterator[Running]:
    """One more running incidents service over an existing database."""
    config = IncidentsSettings(database_url=url, routing_keys=ROUTING_KEYS, **settings)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        async with running_service(create_app(platform, config)) as client, \
                TopicWatcher(platform, platform.topic("incidents")) as watcher:
            yield Running(client, platform, config, watcher, url, producer)
    finally:
        await producer.stop()
