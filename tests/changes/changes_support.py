"""Helpers for the changes tests: the running service handle and event publishing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers

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


def unique_service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


