"""Bounded load on a running stack, and the ledger of what the services accepted, to check
after a fault that every accepted write is there and every reaction happened exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from e2e.stack import Stack


@dataclass
class Ledger:
    """What the services answered 2xx to; writes with no answer may or may not exist."""

    tag: str
    deployments: dict[str, str] = field(default_factory=dict)  # id -> service
    failed: set[str] = field(default_factory=set)  # deployment ids whose move to failed was 2xx
    incidents: dict[str, str] = field(default_factory=dict)  # id -> title
    attempts: int = 0
    refused: int = 0


class Load:
    """Chains of writes at a steady rate until stopped: a production deployment moved to
    in_progress and failed (S2 opens an incident, the gate's receipt creates a change), and
    an incident of its own, each on a service name of its own."""

    def __init__(self, stack: Stack, tag: str, per_second: float = 4.0) -> None:
        self.stack = stack
        self.ledger = Ledger(tag)
        self.per_second = per_second
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(timeout=10)
        self._n = 0

    async def _post(self, service: str, path: str, role: str, body: dict[str, Any]
                    ) -> dict[str, Any] | None:
        self.ledger.attempts += 1
        try:
            r = await self._client.post(f"{self.stack.url(service)}{path}", json=body,
                                        headers=self.stack.headers(role))
        except httpx.HTTPError:
            self.ledger.refused += 1
            return None
        if r.status_code >= 300:
            self.ledger.refused += 1
            return None
        return r.json()  # type: ignore[no-any-return]

    async def _chain(self, n: int) -> None:
        service = f"{self.ledger.tag}-{n}"
        incident = await self._post("incidents", "/api/v1/incidents", "practitioner",
                                    {"title": f"{service} slow", "service": f"{service}-i",
                                     "environment": "production", "impact": 3, "urgency": 3})
        if incident is not None:
            self.ledger.incidents[incident["id"]] = incident["title"]
        deployment = await self._post("deployments", "/api/v1/deployments", "pipeline",
                                      {"service": service, "environment": "production",
                                       "version": f"1.0.{n}"})
        if deployment is None:
            return
        dep_id = deployment["id"]
        self.ledger.deployments[dep_id] = service
        for to in ("in_progress", "failed"):
            for _ in range(30):  # a pipeline retries its step until the service answers
                moved = await self._post("deployments", f"/api/v1/deployments/{dep_id}/transitions",
                                         "pipeline", {"to": to, "reason": "fault drill"})
                if moved is not None:
                    break
                current = await self._get("deployments", f"/api/v1/deployments/{dep_id}")
                if current is not None and current["status"] in (to, "failed"):
                    break
                await asyncio.sleep(0.5)
            else:
                return
        if current_ok := await self._get("deployments", f"/api/v1/deployments/{dep_id}"):
            if current_ok["status"] == "failed":
                self.ledger.failed.add(dep_id)

    async def _get(self, service: str, path: str) -> dict[str, Any] | None:
        with contextlib.suppress(httpx.HTTPError):
            r = await self._client.get(f"{self.stack.url(service)}{path}",
                                       headers=self.stack.headers("viewer"))
            if r.status_code == 200:
                return r.json()  # type: ignore[no-any-return]
        return None

    async def run(self) -> None:
        interval = 1 / self.per_second
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._n += 1
            task = asyncio.create_task(self._chain(self._n))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            next_at += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - time.monotonic()))

    async def __aenter__(self) -> Load:
        self._runner = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        await self._runner
        # Chains in flight finish (their retries outlast any fault here).
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await self._client.aclose()


async def verify(stack: Stack, ledger: Ledger, timeout: float = 90) -> dict[str, int]:
    """Every accepted write is there; each reaction to it happened exactly once; healthy."""
    headers = stack.headers("viewer")
    async with httpx.AsyncClient(timeout=10) as client:
        async def get(owner: str, path: str, **params: Any) -> Any:
            r = await client.get(f"{stack.url(owner)}{path}", headers=headers, params=params)
            assert r.status_code == 200, (owner, path, r.status_code, r.text[:200])
            return r.json()

        for incident_id, title in ledger.incidents.items():
            assert (await get("incidents", f"/api/v1/incidents/{incident_id}"))["title"] == title
        for dep_id, service in ledger.deployments.items():
            got = await get("deployments", f"/api/v1/deployments/{dep_id}")
            assert got["service"] == service
            if dep_id in ledger.failed:
                assert got["status"] == "failed"

        async def unsettled() -> list[str]:
            """Reactions not (yet) applied exactly once, described."""
            wrong = []
            for dep_id, service in ledger.deployments.items():
                changes = [c for c in (await get("changes", "/api/v1/changes", service=service,
                                                 limit=200))["items"]
                           if c.get("deployment_id") == dep_id]
                if len(changes) != 1:
                    wrong.append(f"{service}: {len(changes)} gate changes")
                if dep_id in ledger.failed:
                    incidents = [i for i in (await get("incidents", "/api/v1/incidents",
                                                       service=service, limit=200))["items"]
                                 if i.get("cause_deployment_id") == dep_id]
                    if len(incidents) != 1:
                        wrong.append(f"{service}: {len(incidents)} S2 incidents")
            return wrong

        deadline = time.monotonic() + timeout
        while wrong := await unsettled():
            assert time.monotonic() < deadline, (
                f"{len(wrong)} reactions missing or doubled of {len(ledger.deployments)} "
                f"deployments: {wrong[:12]}")
            await asyncio.sleep(1)
        # Exactly once also means no late duplicate: look again after the consumers idle.
        await asyncio.sleep(3)
        assert not await unsettled(), "a reaction was applied twice"

        for service in stack.services:
            ready = await get(service, "/readyz")
            assert ready["status"] == "ok"
        for service in stack.services:
            async def connected(service: str = service) -> bool:
                return (await get(service, "/readyz"))["broker"] == "connected"
            deadline = time.monotonic() + 60
            while not await connected():
                assert time.monotonic() < deadline, f"{service} never reconnected"
                await asyncio.sleep(0.5)
    return {"deployments": len(ledger.deployments), "failed": len(ledger.failed),
            "incidents": len(ledger.incidents), "attempts": ledger.attempts,
            "refused": ledger.refused}


def new_tag(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:6]}"
