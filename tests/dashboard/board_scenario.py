"""Events for dashboard tests, built with ``tandem.events.new_event`` and the documented fields.

The dashboard depends on no other service: tests publish these onto the topics themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaProducer

from tandem.db import utcnow
from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.settings import PlatformSettings

SERVICE_OF = {"incident": "incidents", "change": "changes", "freeze": "changes",
              "deployment": "deployments", "service": "catalog"}
PREFIX = {"incident": "INC", "change": "CHG", "freeze": "FRZ", "deployment": "DEP",
          "service": "SVC"}
_numbers: dict[str, int] = {}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _number(aggregate: str) -> str:
    _numbers[aggregate] = _numbers.get(aggregate, 1000) + 1
    return f"{PREFIX[aggregate]}{_numbers[aggregate]:07d}"


class Aggregate:
    """One incident, change, freeze or deployment, and the events about it, in order."""

    def __init__(self, aggregate: str, snapshot: dict[str, Any], at: datetime) -> None:
        self.aggregate = aggregate
        self.snapshot = {"id": str(uuid.uuid4()), "number": _number(aggregate), "version": 0,
                         "created_at": iso(at), "updated_at": iso(at), **snapshot}
        self.events: list[CloudEvent] = []

    @property
    def id(self) -> str:
        return str(self.snapshot["id"])

    @property
    def topic(self) -> str:
        return SERVICE_OF[self.aggregate]

    def event(self, verb: str, at: datetime | None = None, **facts: Any) -> CloudEvent:
        self.snapshot["version"] += 1
        if at is not None:
            self.snapshot["updated_at"] = iso(at)
        event = new_event(service=self.topic, type=f"tandem.{self.aggregate}.{verb}",
                          subject=self.id, sequence=self.snapshot["version"], actor="test-user",
                          data={self.aggregate: dict(self.snapshot), **facts})
        if at is not None:  # the event happened when the change did
            event = event.model_copy(update={"time": at})
        self.events.append(event)
        return event

    def created(self) -> CloudEvent:
        return self.event("created", datetime.fromisoformat(self.snapshot["created_at"]))

    def moved(self, to: str, at: datetime | None = None, reason: str = "",
              **fields: Any) -> CloudEvent:
        before = self.snapshot["status"]
        self.snapshot.update(status=to, **fields)
        return self.event("transitioned", at, **{"from": before, "to": to, "reason": reason})


def incident(title: str, service: str, priority: int, *, status: str = "new",
             reported: datetime | None = None, environment: str = "production",
             **fields: Any) -> Aggregate:
    reported = reported or utcnow()
    snapshot = {"title": title, "description": "", "service": service,
                "environment": environment, "impact": min(priority, 3), "urgency": 1,
                "priority": priority, "major": priority <= 2, "status": status,
                "cause_deployment_id": None, "cause_change_id": None,
                "reported_at": iso(reported), "acknowledged_at": None, "resolved_at": None,
                "closed_at": None, **fields}
    return Aggregate("incident", snapshot, reported)


def catalog_service(name: str, *, owner: str | None, operations: str | None = None,
                    tier: int | None = None) -> Aggregate:
    """A service as the catalog writes it down (``owner: None``: unowned)."""
    snapshot = {"name": name, "title": None, "tier": tier, "lifecycle": "production",
                "owner_team": owner, "operations_team": operations, "unowned": owner is None,
                "source": "import" if owner else "discovered"}
    return Aggregate("service", snapshot, utcnow())


def change(title: str, service: str, *, type_: str = "normal", status: str = "new",
           start: datetime, hours: float = 1, **fields: Any) -> Aggregate:
    snapshot = {"type": type_, "title": title, "service": service,
                "environment": "production", "status": status, "risk": "moderate",
                "planned_start": iso(start), "planned_end": iso(start + timedelta(hours=hours)),
                "incident_id": None, "deployment_id": None, "close_code": None, **fields}
    return Aggregate("change", snapshot, min(start, utcnow()) - timedelta(hours=2))


def freeze(services: list[str], reason: str, *, starts: datetime, ends: datetime,
           status: str = "active", source: str = "manual",
           incident_id: str | None = None) -> Aggregate:
    snapshot = {"services": services, "starts_at": iso(starts), "ends_at": iso(ends),
                "status": status, "source": source, "incident_id": incident_id,
                "reason": reason}
    return Aggregate("freeze", snapshot, min(starts, utcnow()))


def deployment(service: str, version: str, *, at: datetime | None = None,
               commit_ages_h: Iterable[float] = (6,), decision: str = "allowed",
               reasons: list[dict[str, str]] | None = None,
               environment: str = "production") -> Aggregate:
    """A requested deployment whose commits were made ``commit_ages_h`` hours before ``at``."""
    at = at or utcnow()
    snapshot = {
        "service": service, "environment": environment, "software_version": version,
        "commits": [{"sha": uuid.uuid4().hex + uuid.uuid4().hex[:8],
                     "committed_at": iso(at - timedelta(hours=h))} for h in commit_ages_h],
        "change_id": None, "status": "requested",
        "gate": {"decision": decision, "mode": "receipt", "change_id": None,
                 "reasons": reasons or [{"code": "receipt",
                                         "message": "standard change recorded"}]},
        "started_at": None, "finished_at": None,
    }
    return Aggregate("deployment", snapshot, at - timedelta(minutes=8))


def finished_deployment(service: str, version: str, finished: datetime,
                        status: str = "succeeded", **kwargs: Any) -> Aggregate:
    """A deployment that went requested -> in_progress -> ``status``, with all its events."""
    dep = deployment(service, version, at=finished, **kwargs)
    dep.created()
    dep.moved("in_progress", finished - timedelta(minutes=6),
              started_at=iso(finished - timedelta(minutes=6)))
    dep.moved("succeeded" if status == "rolled_back" else status, finished,
              finished_at=iso(finished))
    if status == "rolled_back":
        dep.moved("rolled_back", finished + timedelta(minutes=20))
    return dep


@asynccontextmanager
async def publisher(platform: PlatformSettings) -> AsyncIterator[
        Callable[[Iterable[CloudEvent]], Awaitable[None]]]:
    """A connected producer; the yielded ``send(events)`` puts them on their services' topics
    (key = subject, structured-mode header) and waits for the broker's acks."""
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    try:
        await producer.start()

        async def send(events: Iterable[CloudEvent]) -> None:
            futures = []
            for event in events:
                topic = platform.topic(event.source.rsplit("/", 1)[-1])
                futures.append(await producer.send(
                    topic, event.to_bytes(), key=event.subject.encode(),
                    headers=[("content-type", CONTENT_TYPE.encode())]))
            for future in futures:
                await future

        yield send
    finally:
        await producer.stop()


async def publish(platform: PlatformSettings, events: Iterable[CloudEvent]) -> None:
    """Send ``events`` to their services' topics, in order."""
    async with publisher(platform) as send:
        await send(events)


def deployment_history(now: datetime) -> list[CloudEvent]:
    """Eight weeks of production deployments of three services, at different paces."""
    events: list[CloudEvent] = []
    # Eight weeks of production deployments for three services, at different paces.
    paces = {"checkout": (1, 0.9, 12), "payments": (3, 30, 9), "search": (7, 70, 4)}
    for service, (every_days, lead_h, fail_every) in paces.items():
        n = 0
        day = 56.0
        while day > 0.3:
            n += 1
            finished = now - timedelta(days=day, hours=(n * 7) % 9)
            status = "rolled_back" if n % fail_every == 0 else "succeeded"
            dep = finished_deployment(service, f"2.{n // 10}.{n % 10}", finished, status,
                                      commit_ages_h=(lead_h, lead_h * 1.6 + 1))
            events += dep.events
            day -= every_days * (0.7 + (n % 3) * 0.3)
    return events


def busy_afternoon(now: datetime) -> list[CloudEvent]:
    """Live incidents, changes in flight, freezes and gated deployments, as of ``now``."""
    events: list[CloudEvent] = []
    events.append(catalog_service("checkout", owner="checkout-dev", operations="checkout-ops",
                                  tier=1).created())
    events.append(catalog_service("search", owner=None).created())
    p1 = incident("Checkout returns 502 for card payments", "checkout", 1,
                  reported=now - timedelta(minutes=52), assignment_group="checkout-ops")
    events.append(p1.created())
    events.append(p1.moved("acknowledged", now - timedelta(minutes=47),
                           acknowledged_at=iso(now - timedelta(minutes=47))))
    events.append(p1.moved("in_progress", now - timedelta(minutes=40)))
    p2 = incident("Payment confirmations delayed by 4 minutes", "payments", 2,
                  reported=now - timedelta(minutes=21))
    events.append(p2.created())
    p3 = incident("Search suggestions empty for some locales", "search", 3,
                  reported=now - timedelta(hours=3), status="on_hold")
    events.append(p3.created())
    p4 = incident("Typo on the order confirmation page", "checkout", 4,
                  reported=now - timedelta(hours=26))
    events.append(p4.created())
    done = incident("Login page slow from the EU region", "api-gateway", 3,
                    reported=now - timedelta(hours=5))
    events.append(done.created())
    events.append(done.moved("resolved", now - timedelta(hours=2),
                             resolved_at=iso(now - timedelta(hours=2)),
                             resolution_code="solution_provided"))
    fz = freeze(["checkout"], f"major incident {p1.snapshot['number']} is open",
                starts=now - timedelta(minutes=52), ends=now + timedelta(days=7),
                source="incident", incident_id=p1.id)
    events.append(fz.created())
    events.append(freeze([], "Quarter-end close", starts=now + timedelta(days=2),
                         ends=now + timedelta(days=3), status="scheduled").created())
    fix = change("Roll back checkout to 2.5.3", "checkout", type_="emergency", status="authorize",
                 start=now + timedelta(minutes=10), incident_id=p1.id)
    events.append(fix.created())
    db = change("Payments database minor version upgrade", "payments", status="assess",
                start=now + timedelta(days=1, hours=3), hours=2)
    events.append(db.created())
    cdn = change("Move search assets to the new CDN", "search", status="scheduled",
                 start=now + timedelta(hours=4))
    events.append(cdn.created())
    std = change("Rotate TLS certificates", "api-gateway", type_="standard", status="implement",
                 start=now - timedelta(minutes=15))
    events.append(std.created())
    blocked = deployment("checkout", "2.6.0", decision="prevented", reasons=[
        {"code": "frozen", "message": f"checkout is frozen: {fz.snapshot['reason']}"}])
    events.append(blocked.created())
    events.append(blocked.event("gate_decided", gate=blocked.snapshot["gate"],
                                change_request=None))
    waiting = deployment("payments", "4.2.0", decision="awaiting", reasons=[
        {"code": "approval", "message": "normal change CHG0001005 awaits approval"}])
    events.append(waiting.created())
    return events
