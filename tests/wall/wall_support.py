"""Helpers for the wall tests: the running services' handle, unique names, events seen."""


from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from changes.config import ChangesSettings
from deployments.config import DeploymentsSettings
from incidents.config import IncidentsSettings
from tandem.settings import PlatformSettings
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    eventually,
)


def unique(label: str = "svc") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


@dataclass
class Wall:
    """The three services, a client each, and their settings (a test may change a setting the
    service reads per request, e.g. the gate mode)."""

    platform: PlatformSettings
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    incidents: IncidentsSettings
    changes: ChangesSettings
    deployments: DeploymentsSettings

    def headers(self, role: str, sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def call(self, service: str, method: str, path: str, *, role: str = "viewer",
                   sub: str | None = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        r = await self.clients[service].request(
            method, path, headers={**self.headers(role, sub), **(headers or {})}, **kwargs)
        assert r.status_code == expect, f"{method} {service}{path}: {r.status_code} {r.text}"
        return r.json()

    async def row(self, service: str, table: Any, key: Any) -> Any:
        """A row of ``service``'s own database (to know a projection has caught up)."""
        async with self.apps[service].state.runtime.db.sessionmaker() as session:
            return (await session.scalars(select(table).where(table.id == key))).first()

    async def until(self, probe: Callable[[], Awaitable[Any]], timeout: float = 30) -> Any:
        return await eventually(probe, timeout=timeout)


async def events_about(wall: Wall, service: str, subject: str,
                       predicate: Callable[[list[Any]], bool], timeout: float = 30) -> list[Any]:
    """The events ``service`` published about ``subject``, once ``predicate`` holds for them."""
    async with TopicWatcher(wall.platform, wall.platform.topic(service)) as watcher:
        def mine(events: list[Any]) -> list[Any]:
            return [e for e in events if e.subject == subject]

        return mine(await watcher.wait_for(lambda evs: predicate(mine(evs)), timeout=timeout))
