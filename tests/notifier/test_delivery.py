"""Facts reach their receivers (issue 17): over real loopback HTTP, from real services on the
real broker, on SQLite and PostgreSQL. Every body is verified with the ``standardwebhooks``
library, as a receiver would."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import timedelta

import pytest
from notifier_support import Receiver, Stack, receiver, unique

from notifier.models import DeliveryLane
from tandem_testing import TopicWatcher, eventually

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


async def _note(stack: Stack, incident: dict[str, object], text: str) -> None:
    await stack.call("incidents", "POST", f"/api/v1/incidents/{incident['id']}/notes",
                     role="practitioner", expect=201, json={"text": text})


async def test_a_receiver_down_for_a_while_gets_every_event_afterwards_in_order_once_each(
        stack: Stack, request: pytest.FixtureRequest) -> None:
    """The full 30 s outage on PostgreSQL (production's database); the same path with a
    shorter one on SQLite keeps the suite fast."""
    outage = 30.0 if "postgresql" in request.node.callspec.id else 5.0
    service = unique("pay")
    hook = Receiver()  # down: nothing listens on its port yet
    sub = await stack.subscribe(hook.url, services=[service])
    incidents = [await stack.incident(service, impact=2, urgency=2, title=f"Outage {i}")
                 for i in range(3)]
    for round_ in range(3):
        for incident in incidents:
            await _note(stack, incident, f"note {round_}")
    expected = {i["id"]: 4 for i in incidents}  # created and three notes each (at least)
    await eventually(lambda: _queued(stack, sub["number"], sum(expected.values())), timeout=20)
    await asyncio.sleep(outage)
    waiting = await stack.deliveries(sub["number"])
    assert {d["status"] for d in waiting} == {"pending"}
    # Each incident's first event is being retried; its later ones wait behind it.
    tried = {d["subject"] for d in waiting if d["attempts"] >= 2 and d["last_error"]}
    assert tried >= set(expected)  # (the catalog registering the service is one too)
    await hook.start()
    try:
        everything = await eventually(lambda: _all_delivered(stack, sub["number"]), timeout=30)
        received = hook.once_each()
        bodies = [r.json() for r in received]
        hook.verified(sub["secret"])
        # Every event queued is received, once each after dropping repeats by webhook-id...
        assert sorted(b["id"] for b in bodies) == sorted(d["event_id"] for d in everything)
        for incident in incidents:
            mine = [b for b in bodies if b["subject"] == incident["id"]]
            assert len(mine) >= expected[incident["id"]]
            # ...and each incident's events in the order they happened.
            assert [b["sequence"] for b in mine] == sorted(b["sequence"] for b in mine)
            assert mine[0]["type"] == "tandem.incident.created"
    finally:
        await hook.stop()


async def _queued(stack: Stack, number: str, at_least: int) -> bool:
    return len(await stack.deliveries(number)) >= at_least


async def _all_delivered(stack: Stack, number: str) -> list[dict[str, object]] | None:
    items = await stack.deliveries(number)
    return items if items and all(d["status"] == "delivered" for d in items) else None


async def test_a_slow_receiver_never_delays_a_fast_one(stack: Stack) -> None:
    service = unique("pay")
    async with receiver(delay=1.5) as slow, receiver() as fast:
        await stack.subscribe(slow.url, services=[service], types=["tandem.incident.created"])
        await stack.subscribe(fast.url, services=[service], types=["tandem.incident.created"])
        for i in range(4):
            await stack.incident(service, impact=2, urgency=2, title=f"Slow {i}")
        await eventually(lambda: len(fast.requests) == 4, timeout=10, interval=0.01)
        # The fast receiver has all four while the slow one has answered at most one.
        assert len(slow.requests) <= 1
        await eventually(lambda: len(slow.requests) == 4, timeout=20)


async def test_a_receiver_answering_410_gone_disables_its_subscription_at_once(
        stack: Stack) -> None:
    service = unique("pay")
    async with receiver(status=410) as gone, receiver() as witness, \
            TopicWatcher(stack.platform, stack.platform.topic("notifier")) as watcher:
        sub = await stack.subscribe(gone.url, services=[service])
        # A second receiver of the same events shows when the notifier has handled each one.
        await stack.subscribe(witness.url, services=[service],
                              types=["tandem.incident.created"])
        await stack.incident(service, impact=2, urgency=2)
        await stack.incident(service, impact=2, urgency=2)
        disabled = await eventually(lambda: _status(stack, sub["number"], "disabled"))
        sent = len(gone.requests)
        assert "410" in disabled["disabled_reason"]
        events = await watcher.wait_for(lambda evs: any(
            e.subject == sub["id"] and e.type == "tandem.subscription.transitioned"
            for e in evs))
        moved = next(e for e in events if e.subject == sub["id"]
                     and e.type == "tandem.subscription.transitioned")
        assert moved.data["to"] == "disabled" and moved.data["automatic"] is True
        # The signing secret never travels in an event.
        assert all(sub["secret"] not in e.to_bytes().decode() for e in events)
        # The lane stops at the first 410: the other incident's delivery (another subject, due
        # in the same round) is not sent to the receiver that said it is gone, and nothing
        # arrives after the disable (an attempt that timed out before its 410 came back may
        # have been tried again before it, on a loaded machine).
        await asyncio.sleep(0.5)
        assert 1 <= sent == len(gone.requests)
        # An incident after the disable is never sent to a receiver that is gone.
        await stack.incident(service, impact=2, urgency=2)
        await eventually(lambda: len(witness.requests) == 3, timeout=15)
        await asyncio.sleep(0.5)
        assert len(gone.requests) == sent
        log = await stack.deliveries(sub["number"])
        failed = [d for d in log if d["status"] == "failed"]
        assert 1 <= len(failed) == len(gone.requests)
        assert all(d["last_status_code"] == 410 for d in failed)
        # What was queued meanwhile waits, unsent, in case a person enables it again.
        assert all(d["status"] == "pending" and d["attempts"] == 0 for d in log
                   if d not in failed)


async def _status(stack: Stack, number: str, status: str) -> dict[str, object] | None:
    sub = await stack.call("notifier", "GET", f"/api/v1/subscriptions/{number}", role="viewer")
    return sub if sub["status"] == status else None


async def test_failures_are_retried_with_backoff_and_logged_then_delivered(
        stack: Stack) -> None:
    service = unique("pay")
    async with receiver(status=503) as flaky:
        sub = await stack.subscribe(flaky.url, services=[service],
                                    types=["tandem.incident.created"])
        await stack.incident(service, impact=2, urgency=2)
        await eventually(lambda: len(flaky.requests) >= 3, timeout=20)
        (pending,) = await stack.deliveries(sub["number"])
        assert pending["status"] == "pending"
        assert pending["attempts"] >= 2
        assert pending["last_status_code"] == 503
        assert pending["last_latency_ms"] is not None
        assert pending["next_attempt_at"] is not None
        gaps = [b.at - a.at for a, b in itertools.pairwise(flaky.requests)]
        assert gaps[-1] >= 0.1  # backing off: 0.2 s doubling (jittered to half at least)
        metrics = await eventually(lambda: _metric(stack, "tandem_notifier_backlog", sub["id"]))
        assert float(metrics.rsplit(" ", 1)[1]) >= 1
        flaky.status = 200
        (done,) = await eventually(lambda: _all_delivered(stack, sub["number"]), timeout=20)
        assert done["last_status_code"] == 200
        assert len({r.webhook_id for r in flaky.requests}) == 1  # every retry is one message
        text = (await stack.clients["notifier"].get("/metrics")).text
        assert 'tandem_notifier_deliveries_total{outcome="delivered"}' in text
        assert 'tandem_notifier_deliveries_total{outcome="retrying"}' in text
        assert "tandem_notifier_attempt_duration_seconds_count" in text


async def _metric(stack: Stack, name: str, label: str) -> str | None:
    text = (await stack.clients["notifier"].get("/metrics")).text
    return next((line for line in text.splitlines()
                 if line.startswith(name + "{") and label in line), None)


async def test_a_subscription_failing_for_five_days_is_disabled_with_an_event(
        stack: Stack) -> None:
    service = unique("pay")
    async with receiver(status=500) as failing:
        sub = await stack.subscribe(failing.url, services=[service],
                                    types=["tandem.incident.created"])
        await stack.incident(service, impact=2, urgency=2)
        await eventually(lambda: _attempted(stack, sub["number"]), timeout=10)
        # Five days of failures, as the lane remembers them.
        async with stack.apps["notifier"].state.db.transaction() as session:
            lane = await session.get(DeliveryLane, uuid.UUID(sub["id"]))
            assert lane is not None and lane.failing_since is not None
            lane.failing_since = lane.failing_since - timedelta(days=5)
        disabled = await eventually(lambda: _status(stack, sub["number"], "disabled"),
                                    timeout=20)
        assert "5 days" in disabled["disabled_reason"]
        await stack.call("notifier", "POST",
                         f"/api/v1/subscriptions/{sub['number']}/transitions",
                         json={"to": "active", "reason": "receiver fixed"})
        failing.status = 200
        await eventually(lambda: _all_delivered(stack, sub["number"]), timeout=20)


async def _attempted(stack: Stack, number: str) -> bool:
    return any(d["attempts"] for d in await stack.deliveries(number))


async def test_a_delivery_is_redelivered_on_request(stack: Stack) -> None:
    service = unique("pay")
    async with receiver() as hook:
        sub = await stack.subscribe(hook.url, services=[service],
                                    types=["tandem.incident.created"])
        await stack.incident(service, impact=2, urgency=2)
        (delivery,) = await eventually(lambda: _all_delivered(stack, sub["number"]))
        await stack.call("notifier", "POST", f"/api/v1/deliveries/{delivery['id']}/redeliver",
                         role="viewer", expect=403)
        again = await stack.call("notifier", "POST",
                                 f"/api/v1/deliveries/{delivery['id']}/redeliver", expect=202)
        assert again["status"] == "pending"
        await eventually(lambda: len(hook.requests) == 2)
        assert hook.requests[0].webhook_id == hook.requests[1].webhook_id
        (redelivered,) = await eventually(lambda: _all_delivered(stack, sub["number"]))
        assert redelivered["attempts"] == 2


async def test_the_slack_message_reads_in_one_glance(stack: Stack) -> None:
    service = unique("pay")
    async with receiver() as chat:
        sub = await stack.subscribe(chat.url, format="slack", services=[service],
                                    types=["tandem.incident.created"])
        incident = await stack.incident(service, title="Checkout <fails> & retries",
                                        sub="alice")
        await eventually(lambda: chat.requests)
        (message,) = chat.verified(sub["secret"])
        text = message["text"]
        assert f"P1 major incident {incident['number']} opened on {service}" in text
        assert "Checkout &lt;fails&gt; &amp; retries" in text
        assert "by alice" in text
        link = f"http://127.0.0.1:8001/api/v1/incidents/{incident['id']}"
        assert link in text
        blocks = message["blocks"]
        fields = {f["text"].split("\n")[0].strip("*"): f["text"].split("\n")[1]
                  for f in blocks[1]["fields"]}
        assert fields == {"Service": service, "Environment": "production", "Priority": "P1",
                          "Status": incident["status"], "By": "alice"}
        assert link in blocks[0]["text"]["text"]
        assert chat.requests[0].headers["content-type"] == "application/json"
