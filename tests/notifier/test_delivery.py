"""Facts reach their receivers (issue 17): over real loopback HTTP, from real services on the
real broker, on SQLite and PostgreSQL. Every body is verified with the ``standardwebhooks``
library, as a receiver would."""

from __future__ import annotations

import asyncio
import time

import pytest
from notifier_support import Stack, receiver, unique

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_p1_incident_reaches_a_subscription_of_its_service_within_a_second(
        stack: Stack) -> None:
    service, other = unique("pay"), unique("search")
    async with receiver() as hook, receiver() as elsewhere, receiver() as everything:
        sub = await stack.subscribe(hook.url, services=[service], min_priority=1,
                                    types=["tandem.incident.*"])
        await stack.subscribe(elsewhere.url, services=[other])
        await stack.subscribe(everything.url, services=[service])
        assert sub["secret"].startswith("whsec_")
        assert "secret" not in await stack.call("notifier", "GET",
                                                f"/api/v1/subscriptions/{sub['number']}")
        # A P3 of the same service is below the subscription's priority (and once it reached
        # the subscription without a filter of priority, the notifier is surely consuming).
        await stack.incident(service, impact=2, urgency=2, title="Slow receipts")
        await eventually(lambda: everything.requests, timeout=20)
        incident = await stack.incident(service)
        started = time.monotonic()  # created: committed, and answered
        assert incident["priority"] == 1
        await eventually(lambda: hook.requests, timeout=5, interval=0.01)
        took = hook.requests[0].at - started
        assert took < 1.0, f"the P1 took {took:.3f}s to arrive"

        (event,) = hook.verified(sub["secret"])
        assert event["type"] == "tandem.incident.created"
        assert event["subject"] == incident["id"]
        assert event["data"]["incident"]["number"] == incident["number"]
        assert event["actor"] == "alice"
        received = hook.requests[0]
        assert received.webhook_id == event["id"]
        assert received.headers["content-type"] == "application/cloudevents+json"

        delivered = await eventually(lambda: _delivered(stack, sub["number"]))
        assert delivered[0]["status"] == "delivered"
        assert delivered[0]["last_status_code"] == 200
        assert delivered[0]["attempts"] == 1
        await asyncio.sleep(0.3)
        assert len(hook.requests) == 1
        assert elsewhere.requests == []


async def _delivered(stack: Stack, number: str) -> list[dict[str, object]]:
    return [d for d in await stack.deliveries(number) if d["status"] == "delivered"]
