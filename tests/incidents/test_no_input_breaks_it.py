"""No input produces a 500: seeded random bodies and parameters against every endpoint."""

from __future__ import annotations

import random
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from incidents_support import ROUTING_KEY, Running
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

NASTY: list[Any] = [
    None, True, False, 0, -1, 4, 2**63, 10**30, 1.5, -0.0, "", " ", "x" * 300, "y" * 20000,
    "production", "prod", "P1", "🙂" * 60, "\u202eevil", "a\x00b", [], [1, "a"], {}, {"a": 1},
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "not-a-date", str(uuid.uuid4()), "resolved",
    "on_hold", "awaiting_vendor", "solution_provided", "critical", "trigger", "api",
    [[1, 2, 3], [2, 3, 4], [3, 4, 5]], {"1": {"response_seconds": 5}}, ROUTING_KEY,
]

VALID_CREATE = {"title": "t", "service": "fuzz", "environment": "production", "impact": 2,
                "urgency": 2}
FIELDS = {
    "create": [*VALID_CREATE, "description", "assignment_group", "assignee", "priority"],
    "patch": ["title", "description", "service", "environment", "impact", "urgency",
              "assignment_group", "assignee", "priority", "major", "mitigated_at", "status"],
    "transition": ["to", "reason", "on_hold_reason", "resolution_code", "resolution_notes"],
    "note": ["text", "kind"],
    "cause": ["deployment_id", "change_id"],
    "policy": ["priority_matrix", "sla_targets"],
    "enqueue": ["routing_key", "event_action", "dedup_key", "payload", "client", "links"],
    "payload": ["summary", "source", "severity", "custom_details", "class", "timestamp"],
}


def mutate(rng: random.Random, base: dict[str, Any], fields: list[str]) -> Any:
    """A body near ``base``: some fields replaced by nasty values, sometimes not a dict."""
    if rng.random() < 0.05:
        return rng.choice(NASTY)
    body = dict(base) if rng.random() < 0.7 else {}
    for name in rng.sample(fields, k=rng.randint(1, min(3, len(fields)))):
        body[name] = rng.choice(NASTY)
    return body


def assert_no_500(response: Any, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    if response.status_code >= 400 and not what.startswith("enqueue"):
        assert response.headers["content-type"].startswith("application/problem+json"), what


async def test_random_bodies_never_give_a_500(svc: Running) -> None:
    rng = random.Random(20261127)
    incident = await svc.create(service="fuzz")
    base = f"/api/v1/incidents/{incident['id']}"
    manager = svc.headers("manager")
    owner = svc.headers("owner")
    for _ in range(25):
        body = mutate(rng, VALID_CREATE, FIELDS["create"])
        r = await svc.client.post("/api/v1/incidents", json=body, headers=manager)
        assert_no_500(r, f"create {body!r:.200}")
        body = mutate(rng, {}, FIELDS["patch"])
        r = await svc.client.patch(base, json=body, headers=manager)
        assert_no_500(r, f"patch {body!r:.200}")
        body = mutate(rng, {"to": "in_progress"}, FIELDS["transition"])
        r = await svc.client.post(f"{base}/transitions", json=body, headers=manager)
        assert_no_500(r, f"transition {body!r:.200}")
        body = mutate(rng, {"text": "n"}, FIELDS["note"])
        r = await svc.client.post(f"{base}/notes", json=body, headers=manager)
        assert_no_500(r, f"note {body!r:.200}")
        body = mutate(rng, {}, FIELDS["cause"])
        r = await svc.client.post(f"{base}/cause", json=body, headers=manager)
        assert_no_500(r, f"cause {body!r:.200}")
        body = mutate(rng, {}, FIELDS["policy"])
        r = await svc.client.patch("/api/v1/incident-policy", json=body,
                                   headers={**owner, "If-Match": '"999"'})
        assert_no_500(r, f"policy {body!r:.200}")
        payload = mutate(rng, {"summary": "s", "source": "h", "severity": "info"},
                         FIELDS["payload"])
        body = mutate(rng, {"routing_key": ROUTING_KEY, "event_action": "trigger",
                            "payload": payload}, FIELDS["enqueue"])
        r = await svc.client.post("/v2/enqueue", json=body)
        assert_no_500(r, f"enqueue {body!r:.200}")
        assert r.status_code in (202, 400), r.text
    # A 202 is a promise: every accepted event is applied, none is left failing.
    await eventually(lambda: monitor_queue(svc.url), timeout=30)


async def monitor_queue(url: str) -> bool:
    """Whether the accepted monitor events are all applied (the queue is empty)."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM monitor_event"))).scalar()
    finally:
        await engine.dispose()
    return left == 0


async def test_random_parameters_never_give_a_500(svc: Running) -> None:
    rng = random.Random(7)
    h = svc.headers("viewer")
    names = ["status", "service", "environment", "priority", "major", "assignee", "source",
             "limit", "cursor", "since"]
    texts = [v for v in NASTY if isinstance(v, str | int | float | bool) and v is not None]
    for _ in range(30):
        params = {n: str(rng.choice(texts))[:3000]
                  for n in rng.sample(names, k=rng.randint(1, 4))}
        for path in ("/api/v1/incidents", "/api/v1/incident-metrics"):
            r = await svc.client.get(path, params=params, headers=h)
            assert_no_500(r, f"GET {path} {params!r:.200}")
        ref = quote(str(rng.choice(texts))[:100], safe="")
        for suffix in ("", "/timeline", "/suspects", "/notes"):
            r = await svc.client.get(f"/api/v1/incidents/{ref}{suffix}", headers=h)
            assert_no_500(r, f"GET ref {ref!r:.80}{suffix}")
