"""Helpers for the changes tests: the running service handle and event publishing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers, eventually

#: The change model of domain.md, written out independently of the service's own tables.
MODEL = {
    "normal": {("new", "assess"), ("assess", "authorize"), ("authorize", "scheduled"),
               ("scheduled", "implement"), ("implement", "review"), ("review", "closed"),
               ("assess", "new"), ("authorize", "new")},
    "emergency": {("new", "authorize"), ("authorize", "scheduled"), ("scheduled", "implement"),
                  ("implement", "review"), ("review", "closed"), ("authorize", "new")},
    "standard": {("new", "scheduled"), ("scheduled", "implement"), ("implement", "review"),
                 ("review", "closed")},
}
for _type, _edges in MODEL.items():
    _states = {s for edge in _edges for s in edge}
    _edges |= {(s, "canceled") for s in _states - {"review", "closed"}}


@dataclass
class ChangesService:
    """The running service, its client and what a test needs to talk to it and its topics."""

    client: httpx.AsyncClient
    platform: PlatformSettings
    app: FastAPI
    watcher: TopicWatcher
    producer: AIOKafkaProducer
    sequences: dict[str, int] = field(default_factory=dict)

    def auth(self, role: str, sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def publish(self, service: str, type_: str, subject: str, data: dict[str, Any],
                      actor: str = "someone") -> CloudEvent:
        """Publish an event of another service onto its topic, as that service would."""
        seq = self.sequences.get(subject, 0) + 1
        self.sequences[subject] = seq
        event = new_event(service=service, type=type_, subject=subject, sequence=seq,
                          actor=actor, data=data)
        await self.send(service, event)
        return event

    async def send(self, service: str, event: CloudEvent) -> None:
        """Put ``event`` on ``service``'s topic (again, for a redelivery)."""
        await self.producer.send_and_wait(
            self.platform.topic(service), value=event.to_bytes(), key=event.subject.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())])

    async def events_about(self, subject: str, predicate: Any = None,
                           timeout: float = 20.0) -> list[Any]:
        """This service's events about ``subject``, once ``predicate`` holds for them."""
        def mine(evs: list[Any]) -> list[Any]:
            return [e for e in evs if e.subject == subject]

        evs = await self.watcher.wait_for(
            lambda all_: bool(mine(all_)) and (predicate is None or predicate(mine(all_))),
            timeout=timeout)
        return mine(evs)


def window(start_in_minutes: float = 10, hours: float = 1) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=start_in_minutes)
    return {"planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=hours)).isoformat()}


async def create(svc: ChangesService, type_: str, service: str, role: str = "practitioner",
                 sub: str = "pat", **extra: Any) -> dict[str, Any]:
    # A window that covers now: implementing outside it needs a manager's force.
    body = {"type": type_, "title": f"{type_} change", "service": service,
            "environment": "production", **window(start_in_minutes=-5), **extra}
    r = await svc.client.post("/api/v1/changes", json=body, headers=svc.auth(role, sub))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def move(svc: ChangesService, change: dict[str, Any], to: str, role: str = "practitioner",
               expect: int = 200, **extra: Any) -> dict[str, Any]:
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": to, **extra}, headers=svc.auth(role, "pat"))
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


async def approve(svc: ChangesService, change: dict[str, Any], sub: str,
                  decision: str = "approve", expect: int = 201, **extra: Any) -> dict[str, Any]:
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": decision, "comment": "ok", **extra},
                              headers=svc.auth("manager", sub))
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


def unique_service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"




async def write_down(svc: ChangesService, service: str, *, tier: int | None,
                     owner: tuple[str, list[str]] | None,
                     operations: tuple[str, list[str]] | None = None) -> None:
    """Publish what the catalog says of ``service`` and its teams (``(name, members)``), as
    ``tandem.catalog`` carries it, and wait until the changes service has applied it."""
    for team in filter(None, (owner, operations)):
        name, members = team
        await svc.publish("catalog", "tandem.team.created", str(uuid.uuid5(uuid.NAMESPACE_DNS,
                                                                          name)),
                          {"team": {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                                    "name": name, "members": members}}, actor="olivia")
    subject = str(uuid.uuid5(uuid.NAMESPACE_DNS, service))
    verb = "updated" if subject in svc.sequences else "created"
    await svc.publish("catalog", f"tandem.service.{verb}", subject, {"service": {
        "id": subject, "name": service, "tier": tier,
        "owner_team": owner[0] if owner else None,
        "operations_team": operations[0] if operations else None}, "changes": {}},
        actor="olivia")
    # The catalog's word has arrived once a change of the service shows it.
    probe = await svc.client.post("/api/v1/changes", headers=auth_headers(svc.platform,
                                                                           "practitioner"),
                                  json={"type": "normal", "title": "probe", "service": service,
                                        "environment": "staging"})
    assert probe.status_code == 201, probe.text

    async def applied() -> bool:
        r = await svc.client.get(f"/api/v1/changes/{probe.json()['id']}",
                                 headers=auth_headers(svc.platform, "viewer"))
        rule = r.json()["approval_rule"]
        # A service the catalog has not named yet looks unowned and untiered too.
        if "is not in the catalog yet" in (rule["note"] or ""):
            return False
        return bool(rule["tier"] == tier and rule["owner_team"] == (owner[0] if owner else None)
                    and (not owner or rule["unowned"] is False))

    await eventually(applied)
    # Teams arrive before the service on another partition only by chance: wait for members.
    if owner and tier is not None and tier <= 1:
        async def members_known() -> bool:
            r = await svc.client.get(f"/api/v1/changes/{probe.json()['id']}",
                                     headers=auth_headers(svc.platform, "viewer"))
            note = r.json()["approval_rule"]["note"] or ""
            return "has no members" not in note or not all(t[1] for t in filter(
                None, (owner, operations)))
        await eventually(members_known)
