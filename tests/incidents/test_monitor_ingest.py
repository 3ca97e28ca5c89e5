"""Monitor ingest: PagerDuty Events API v2 payloads, copied from its documentation, work as is.

As in PagerDuty, an event is answered 202 once it is recorded and applied right after, so the
tests wait for its effect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from incidents_support import (
    ROUTING_KEY,
    Running,
    deployment,
    migrated_database,
    replica,
    run_deployment,
    s2_of,
)

from tandem_cli.broker import EmbeddedBroker
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: PagerDuty's documented trigger example ("Send an alert event").
DOC_TRIGGER: dict[str, Any] = {
    "payload": {
        "summary": "DISK at 99% on machine prod-datapipe03.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "severity": "critical",
        "source": "prod-datapipe03.example.com",
        "component": "mysql",
        "group": "prod-datapipe",
        "class": "disk",
        "custom_details": {"free space": "1%", "ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "e93facc04764012d7bfb002500d5d1a6",
    "dedup_key": "srv01/mysql",
    "images": [{
        "src": "https://chart.googleapis.com/chart?chs=600x400&chd=t:6,2,9,5,2,5,7,4,7,3&cht=lc"
               "&chds=a&chxt=y&chm=D,0033FF,0,0,5,1",
        "href": "https://example.com/",
        "alt": "An example link with an image",
    }],
    "links": [{"href": "https://example.com/", "text": "Link text"}],
    "event_action": "trigger",
    "client": "Sample Monitoring Service",
    "client_url": "https://monitoring.service.com",
}

#: PagerDuty's documented acknowledge and resolve examples.
DOC_ACKNOWLEDGE = {"routing_key": "samplekeyhere", "dedup_key": "samplekeyhere",
                   "event_action": "acknowledge"}
DOC_RESOLVE = {"routing_key": "samplekeyhere", "dedup_key": "samplekeyhere",
               "event_action": "resolve"}
#: The Events API v2 overview's trigger example, for the key the acknowledge example uses.
DOC_OVERVIEW_TRIGGER = {
    "payload": {
        "summary": "Example alert on host1.example.com",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "source": "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/"
                  "api-stats-prod-003",
        "severity": "info",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "deploy",
        "custom_details": {"ping time": "1500ms", "load avg": 0.75},
    },
    "routing_key": "samplekeyhere",
    "dedup_key": "samplekeyhere",
    "event_action": "trigger",
}


@contextlib.contextmanager
def warnings_of(logger: str) -> Iterator[list[str]]:
    """The warnings ``logger`` writes meanwhile (a handler of its own: the service's logging
    set-up replaces the root's handlers, pytest's capture among them)."""
    seen: list[str] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    handler = Seen(logging.WARNING)
    logging.getLogger(logger).addHandler(handler)
    try:
        yield seen
    finally:
        logging.getLogger(logger).removeHandler(handler)


async def monitor_incidents(svc: Running, dedup_key: str,
                            service: str = "checkout") -> list[dict[str, Any]]:
    r = await svc.client.get("/api/v1/incidents", params={"service": service,
                                                          "source": "monitor"},
                             headers=svc.headers("viewer"))
    return [i for i in r.json()["items"] if i["dedup_key"] == dedup_key]


async def applied(svc: Running, dedup_key: str, until: Any) -> list[dict[str, Any]]:
    """The monitor incidents with ``dedup_key`` once ``until(incidents)`` holds."""
    async def check() -> Any:
        found = await monitor_incidents(svc, dedup_key)
        return found if until(found) else None
    return await eventually(check)  # type: ignore[return-value]


async def incident_when(svc: Running, incident_id: str, until: Any) -> dict[str, Any]:
    """The incident once ``until(incident)`` holds."""
    async def check() -> Any:
        got = (await svc.client.get(f"/api/v1/incidents/{incident_id}",
                                    headers=svc.headers("viewer"))).json()
        return got if until(got) else None
    return await eventually(check)  # type: ignore[return-value]


async def test_documented_trigger_opens_then_appends(svc: Running) -> None:
    r = await svc.client.post("/v2/enqueue", json=DOC_TRIGGER)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "success", "message": "Event processed",
                        "dedup_key": "srv01/mysql"}
    [incident] = await applied(svc, "srv01/mysql", lambda found: found)
    assert incident["title"] == "DISK at 99% on machine prod-datapipe03.example.com"
    assert incident["priority"] == 1 and incident["major"] is True
    assert incident["environment"] == "production" and incident["alert_count"] == 1
    assert "free space" in incident["description"]

    again = await svc.client.post("/v2/enqueue", json=DOC_TRIGGER)
    assert again.status_code == 202
    [same] = await applied(svc, "srv01/mysql", lambda found: found[0]["alert_count"] == 2)
    assert same["id"] == incident["id"]

    notes = (await svc.client.get(f"/api/v1/incidents/{incident['id']}/notes",
                                  headers=svc.headers("viewer"))).json()["items"]
    assert [n["kind"] for n in notes] == ["alert", "alert"]
    assert notes[0]["details"]["custom_details"] == {"free space": "1%", "ping time": "1500ms",
                                                     "load avg": 0.75}
    assert notes[0]["details"]["links"] == DOC_TRIGGER["links"]
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) >= 3)
    assert events[0].type == "tandem.incident.created"
    assert events[0].actor == "monitor:Sample Monitoring Service"
    assert events[-1].type == "tandem.incident.annotated"


async def test_documented_acknowledge_and_resolve_move_the_open_incident(svc: Running) -> None:
    opened = await svc.client.post("/v2/enqueue", json=DOC_OVERVIEW_TRIGGER)
    assert opened.json()["dedup_key"] == "samplekeyhere"
    [opened_one] = await applied(svc, "samplekeyhere", lambda found: found)
    assert opened_one["priority"] == 5

    ack = await svc.client.post("/v2/enqueue", json=DOC_ACKNOWLEDGE)
    assert ack.status_code == 202 and ack.json()["dedup_key"] == "samplekeyhere"
    got = await incident_when(svc, opened_one["id"], lambda i: i["status"] != "new")
    assert got["status"] == "acknowledged" and got["acknowledged_at"] is not None
    again = await svc.client.post("/v2/enqueue", json=DOC_ACKNOWLEDGE)
    assert again.status_code == 202

    resolve = await svc.client.post("/v2/enqueue", json=DOC_RESOLVE)
    assert resolve.status_code == 202
    got = await incident_when(svc, opened_one["id"], lambda i: i["status"] != "acknowledged")
    assert got["status"] == "resolved" and got["resolution_code"] == "resolved_by_caller"

    # A trigger after the resolve is a new occurrence: a new incident, as in PagerDuty.
    await svc.client.post("/v2/enqueue", json=DOC_OVERVIEW_TRIGGER)
    both = await applied(svc, "samplekeyhere", lambda found: len(found) == 2)
    assert {i["status"] for i in both} == {"resolved", "new"}
    events = await svc.events_about(opened_one["id"], until=lambda evs: len(evs) >= 4)
    moves = [e.data["to"] for e in events if e.type == "tandem.incident.transitioned"]
    assert moves == ["acknowledged", "resolved"]


async def test_resolve_reaches_an_incident_on_hold(svc: Running) -> None:
    key = uuid.uuid4().hex
    await svc.client.post("/v2/enqueue", json={**DOC_TRIGGER, "dedup_key": key})
    [held] = await applied(svc, key, lambda found: found)
    await svc.move(held, "in_progress")
    await svc.move(held, "on_hold", on_hold_reason="awaiting_vendor")
    await svc.client.post("/v2/enqueue", json={**DOC_RESOLVE, "dedup_key": key})
    got = await incident_when(svc, held["id"], lambda i: i["status"] != "on_hold")
    assert got["status"] == "resolved"


async def test_racing_triggers_open_one_incident(svc: Running) -> None:
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(svc.client.post("/v2/enqueue",
                                                     json={**DOC_TRIGGER, "dedup_key": key})
                                     for _ in range(5)))
    assert [a.status_code for a in answers] == [202] * 5
    await applied(svc, key, lambda found: sum(i["alert_count"] for i in found) == 5)
    [one] = await monitor_incidents(svc, key)
    assert one["alert_count"] == 5


async def test_trigger_without_dedup_key_gets_one(svc: Running) -> None:
    body = {**DOC_TRIGGER, "routing_key": "stagingkey"}
    del body["dedup_key"]
    r = await svc.client.post("/v2/enqueue", json=body)
    assert r.status_code == 202
    key = r.json()["dedup_key"]
    assert key and len(key) <= 255
    [staged] = await eventually(lambda: monitor_incidents(svc, key, service="search"))
    assert staged["environment"] == "staging"


@pytest.mark.parametrize(("body", "mentions"), [
    ({**DOC_TRIGGER, "routing_key": "0" * 32}, "routing_key"),
    ({**DOC_TRIGGER, "event_action": "explode"}, "event_action"),
    ({k: v for k, v in DOC_TRIGGER.items() if k != "payload"}, "payload"),
    ({**DOC_TRIGGER, "payload": {**DOC_TRIGGER["payload"], "severity": "meh"}}, "severity"),
    ({**DOC_TRIGGER, "payload": {**DOC_TRIGGER["payload"], "summary": "s" * 1025}}, "summary"),
    ({**DOC_TRIGGER, "dedup_key": "k" * 256}, "dedup_key"),
    ({"routing_key": ROUTING_KEY, "event_action": "resolve"}, "dedup_key"),
    ({"event_action": "trigger"}, "routing_key"),
    ({**DOC_TRIGGER, "payload": {**DOC_TRIGGER["payload"], "summary": "a\x00"}}, "NUL"),
])
async def test_invalid_events_get_pagerdutys_400(svc: Running, body: dict[str, Any],
                                                 mentions: str) -> None:
    r = await svc.client.post("/v2/enqueue", json=body)
    assert r.status_code == 400, r.text
    answer = r.json()
    assert answer["status"] == "invalid event" and answer["message"] == "Event object is invalid"
    assert any(mentions in e for e in answer["errors"]), answer


async def test_unparseable_body_and_unknown_keys_are_handled(svc: Running) -> None:
    garbage = await svc.client.post("/v2/enqueue", content=b"{{{",
                                    headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["errors"]
    listed = await svc.client.post("/v2/enqueue", json=["trigger"])
    assert listed.status_code == 400
    unknown = await svc.client.post("/v2/enqueue", json={**DOC_ACKNOWLEDGE,
                                                         "dedup_key": "never-seen"})
    assert unknown.status_code == 202 and unknown.json()["status"] == "success"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_accepted_events_survive_a_crash_and_repeats_coalesce(
        backend: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A 202 is a promise: events accepted by a process that stops before applying them are
    applied by the next one, once each; the repeats of an open alert become its count and
    one note, not one note and one event each."""
    key, other = uuid.uuid4().hex, uuid.uuid4().hex
    async with migrated_database(broker, tmp_path, backend) as (url, platform):
        # An ingest-only process: it records and answers, and never gets to apply (as if it
        # crashed right after each 202).
        async with replica(broker, platform, url, monitor_applier=False) as first:
            for body in ([{**DOC_TRIGGER, "dedup_key": key}] * 10
                         + [{**DOC_TRIGGER, "dedup_key": other},
                            {**DOC_ACKNOWLEDGE, "routing_key": ROUTING_KEY, "dedup_key": other}]):
                r = await first.client.post("/v2/enqueue", json=body)
                assert r.status_code == 202, r.text
            assert await monitor_incidents(first, key) == []
        # The next process over the same database applies what the first accepted (in one
        # batch: no time limit on the applier's transaction here).
        async with replica(broker, platform, url, monitor_apply_budget_s=60) as second:
            [repeated] = await applied(second, key, lambda found: found)
            assert repeated["alert_count"] == 10
            [acked] = await applied(second, other, lambda found: found)
            assert acked["status"] == "acknowledged" and acked["alert_count"] == 1
            notes = (await second.client.get(f"/api/v1/incidents/{repeated['id']}/notes",
                                             headers=second.headers("viewer"))).json()["items"]
            assert [(n["kind"], (n["details"] or {}).get("count")) for n in notes] == [
                ("alert", None), ("alert", 9)]
            events = await second.events_about(repeated["id"], until=lambda evs: len(evs) >= 3)
            assert [e.type for e in events] == ["tandem.incident.created",
                                                "tandem.incident.annotated",
                                                "tandem.incident.annotated"]
            assert events[-1].data["incident"]["alert_count"] == 10
        # Nothing is applied twice by a third start.
        async with replica(broker, platform, url) as third:
            await asyncio.sleep(1.5)
            [same] = await monitor_incidents(third, key)
            assert (same["alert_count"], same["version"]) == (10, repeated["version"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_key_resolved_and_triggered_again_in_one_batch_opens_a_new_incident(
        backend: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Trigger, resolve, trigger of one key applied in one transaction: the first incident is
    resolved and a second one is open with the key (the unique index of open keys holds);
    the same for a key whose incident was open before the batch (its first trigger there
    counts on it)."""
    fresh, earlier = uuid.uuid4().hex, uuid.uuid4().hex
    trigger, resolve = DOC_TRIGGER, {**DOC_RESOLVE, "routing_key": ROUTING_KEY}
    async with migrated_database(broker, tmp_path, backend) as (url, platform):
        async with replica(broker, platform, url) as before:
            r = await before.client.post("/v2/enqueue", json={**trigger, "dedup_key": earlier})
            assert r.status_code == 202, r.text
            [was_open] = await applied(before, earlier, lambda found: found)
        async with replica(broker, platform, url, monitor_applier=False) as ingest:
            for key in (fresh, earlier):
                for body in (trigger, resolve, trigger):
                    r = await ingest.client.post("/v2/enqueue", json={**body, "dedup_key": key})
                    assert r.status_code == 202, r.text
        async with replica(broker, platform, url, monitor_apply_budget_s=60) as after:
            for key, counted in ((fresh, 1), (earlier, 2)):
                found = await applied(after, key, lambda found: len(found) == 2)
                by_status = sorted((i["status"], i["alert_count"]) for i in found)
                assert by_status == [("new", 1), ("resolved", counted)], (key, found)
            resolved = await incident_when(after, was_open["id"],
                                           lambda got: got["status"] == "resolved")
            assert resolved["alert_count"] == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_alerts_in_one_batch_raise_a_failed_deploys_incident_twice(
        backend: str, broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A failed deployment's P3 incident of the service, then an error (P2) and a critical
    (P1) alert applied in one transaction: raised to P2, then P1, each with its note and one
    event of its own version, and the batch applied whole (not failed and retried alone)."""
    async with migrated_database(broker, tmp_path, backend) as (url, platform):
        async with replica(broker, platform, url) as before:
            await run_deployment(before, deployment(
                "checkout", started=datetime.now(UTC) - timedelta(minutes=2)),
                "in_progress", "failed")
            failed = await s2_of(before, "checkout")
            assert failed["priority"] == 3
        async with replica(broker, platform, url, monitor_applier=False) as ingest:
            for severity in ("error", "critical"):
                r = await ingest.client.post("/v2/enqueue", json={
                    "routing_key": ROUTING_KEY, "event_action": "trigger",
                    "dedup_key": uuid.uuid4().hex,
                    "payload": {"summary": f"checkout {severity}", "source": "prometheus",
                                "severity": severity}})
                assert r.status_code == 202, r.text
        with warnings_of("incidents.monitor_events") as warned:
            async with replica(broker, platform, url, monitor_apply_budget_s=60) as after:
                raised = await incident_when(after, failed["id"],
                                             lambda got: got["priority"] == 1)
                notes = (await after.client.get(f"/api/v1/incidents/{failed['id']}/notes",
                                                headers=after.headers("viewer"))).json()["items"]
                assert [n["text"].split(":")[0] for n in notes] == [
                    "Raised from P3 to P2", "Raised from P2 to P1"]
                events = await after.events_about(failed["id"],
                                                  until=lambda evs: len({e.id for e in evs}) >= 6)
        # Each version one event (a topic may carry an event twice: consumers skip the copy).
        versions = {e.id: e.sequence for e in events}
        assert sorted(versions.values()) == list(range(1, len(versions) + 1)), events
        assert raised["version"] == len(versions)
        assert not [w for w in warned if "one by one" in w], warned
