"""Test support for the deployments service: a running stack and event publishing helpers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from deployments.config import DeploymentsSettings
from tandem.db import utcnow
from tandem.events import new_event
from tandem.settings import PlatformSettings
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    eventually,
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


def change_of(svc: str, status: str, *, type_: str = "normal", deployment_id: Any = None,
              incident_id: Any = None, hours: float = 1) -> dict[str, Any]:
    now = utcnow()
    return {"id": uuid.uuid4(), "number": f"CHG{uuid.uuid4().int % 10**7:07d}", "type": type_,
            "title": f"Deploy {svc}", "service": svc, "environment": "production",
            "status": status, "planned_start": now - timedelta(hours=hours),
            "planned_end": now + timedelta(hours=hours), "incident_id": incident_id,
            "deployment_id": deployment_id, "close_code": None}


def incident_of(svc: str, priority: int, status: str = "new") -> dict[str, Any]:
    return {"id": uuid.uuid4(), "number": f"INC{uuid.uuid4().int % 10**7:07d}",
            "title": "Errors", "service": svc, "environment": "production",
            "priority": priority, "major": priority <= 2, "status": status,
            "cause_deployment_id": None, "cause_change_id": None, "reported_at": utcnow(),
            "acknowledged_at": None, "resolved_at": None, "closed_at": None}


def freeze_of(services: list[str], **kw: Any) -> dict[str, Any]:
    now = utcnow()
    return {"id": uuid.uuid4(), "number": f"FRZ{uuid.uuid4().int % 10**7:07d}",
            "services": services, "starts_at": now - timedelta(minutes=5),
            "ends_at": now + timedelta(hours=2), "status": "active", "source": "manual",
            "incident_id": None, "reason": "release freeze", **kw}


def service_name() -> str:
    """A service name no other test uses (projections are per service)."""
    return f"svc-{uuid.uuid4().hex[:10]}"


