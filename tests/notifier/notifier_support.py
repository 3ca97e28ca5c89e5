"""Notifier test support: webhook receivers on loopback (plain asyncio HTTP servers the test
starts, stops and slows down), and the notifier running beside the incidents service (and the
catalog) on one set of topics, each on its own database."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from catalog.config import MIGRATIONS_DIR as CATALOG_MIGRATIONS
from catalog.config import CatalogSettings
from catalog.main import create_app as create_catalog
from incidents.config import MIGRATIONS_DIR as INCIDENTS_MIGRATIONS
from incidents.config import IncidentsSettings
from incidents.main import create_app as create_incidents
from notifier.config import MIGRATIONS_DIR as NOTIFIER_MIGRATIONS
from notifier.config import NotifierSettings
from notifier.main import create_app as create_notifier
from tandem.kafka import ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import free_port
from tandem_testing import (
    auth_headers,
    drop_pg_database,
    eventually,
    isolated_platform,
    new_database_url,
    running_service,
)


def unique(label: str = "svc") -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


@dataclass
class Received:
    """One request a receiver got: its headers (lowercase names), body and arrival time."""

    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """A webhook receiver on loopback: answers ``status`` after ``delay`` seconds; ``stop``
    closes it (and its open connections) so the port refuses, ``start`` opens it again."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.port = free_port()
        self.status = status
        self.delay = delay
        self.requests: list[Received] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port,
                                                  reuse_address=True)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                headers: dict[str, str] = {}
                while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if self.delay:
                    await asyncio.sleep(self.delay)
                self.requests.append(Received(headers, body, time.monotonic()))
                writer.write(f"HTTP/1.1 {self.status} Answer\r\ncontent-length: 2\r\n\r\nok"
                             .encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def verified(self, secret: str) -> list[Any]:
        """Every body received, each verified as a Standard Webhooks consumer would (raises
        on a bad signature)."""
        hook = Webhook(secret)
        return [hook.verify(r.body, r.headers) for r in self.requests]

    def once_each(self) -> list[Received]:
        """The requests with repeats (the same ``webhook-id``) dropped, in arrival order."""
        seen: set[str] = set()
        out = []
        for r in self.requests:
            if r.webhook_id not in seen:
                seen.add(r.webhook_id)
                out.append(r)
        return out


@asynccontextmanager
async def receiver(status: int = 200, delay: float = 0.0) -> AsyncIterator[Receiver]:
    r = await Receiver(status, delay).start()
    try:
        yield r
    finally:
        await r.stop()


@dataclass
class Stack:
    """The notifier, the incidents service and the catalog, a client each."""

    platform: PlatformSettings
    clients: dict[str, httpx.AsyncClient]
    apps: dict[str, FastAPI]
    notifier_settings: NotifierSettings
    notifier_url: str
    created: list[str] = field(default_factory=list)

    def headers(self, role: str = "manager", sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def call(self, service: str, method: str, path: str, *, role: str = "manager",
                   sub: str | None = None, expect: int = 200, **kwargs: Any) -> Any:
        headers = {**self.headers(role, sub), **kwargs.pop("headers", {})}
        r = await self.clients[service].request(method, path, headers=headers, **kwargs)
        assert r.status_code == expect, f"{method} {service}{path}: {r.status_code} {r.text}"
        return r.json()

    async def subscribe(self, url: str, **fields: Any) -> dict[str, Any]:
        """A subscription (its answer, the secret in it)."""
        return await self.call("notifier", "POST", "/api/v1/subscriptions", expect=201,  # type: ignore[no-any-return]
                               json={"url": url, **fields})

    async def incident(self, service: str, *, impact: int = 1, urgency: int = 1,
                       title: str = "Checkout fails for every card",
                       sub: str = "alice") -> dict[str, Any]:
        return await self.call("incidents", "POST", "/api/v1/incidents", role="practitioner",  # type: ignore[no-any-return]
                               sub=sub, expect=201, json={
                                   "title": title, "description": "Card payments fail.",
                                   "service": service, "environment": "production",
                                   "impact": impact, "urgency": urgency})

    async def deliveries(self, subscription: str, **params: Any) -> list[dict[str, Any]]:
        page = await self.call("notifier", "GET", "/api/v1/deliveries", role="viewer",
                               params={"subscription": subscription, "limit": 200, **params})
        return page["items"]  # type: ignore[no-any-return]


FAST_RETRIES = {"retry_base_s": 0.2, "retry_max_interval_s": 1.0, "poll_interval_s": 0.2,
                "attempt_timeout_s": 2.0}


@asynccontextmanager
async def notifier_stack(bootstrap: str, directory: Path, backend: str,
                         **settings: Any) -> AsyncIterator[Stack]:
    """The three services on ``backend``; the notifier allows loopback receivers and retries
    fast (a test's outage is seconds, not hours)."""
    platform = isolated_platform(bootstrap, directory)
    await ensure_topics(platform, platform.all_topics())
    async with AsyncExitStack() as stack:
        async def database(name: str, migrations: Path) -> str:
            url, created = await new_database_url(backend, directory, name)
            if created is not None:
                stack.push_async_callback(drop_pg_database, created)
            upgrade(migrations, url)
            return url

        notifier_url = await database("notifier", NOTIFIER_MIGRATIONS)
        notifier_settings = NotifierSettings(database_url=notifier_url, allow_loopback=True,
                                             **{**FAST_RETRIES, **settings})
        apps: dict[str, FastAPI] = {
            "notifier": create_notifier(platform, notifier_settings),
            "incidents": create_incidents(platform, IncidentsSettings(
                database_url=await database("incidents", INCIDENTS_MIGRATIONS))),
            "catalog": create_catalog(platform, CatalogSettings(
                database_url=await database("catalog", CATALOG_MIGRATIONS))),
        }
        clients = {name: await stack.enter_async_context(running_service(app))
                   for name, app in apps.items()}
        await eventually(lambda: all(c.started.is_set() for app in apps.values()
                                     for c in app.state.runtime.consumers), timeout=60)
        yield Stack(platform, clients, apps, notifier_settings, notifier_url)
