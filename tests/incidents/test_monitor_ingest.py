"""Monitor ingest: PagerDuty Events API v2 payloads, copied from its documentation, work as is."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from incidents_support import ROUTING_KEY, Running

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


async def monitor_incidents(svc: Running, dedup_key: str) -> list[dict[str, Any]]:
    r = await svc.client.get("/api/v1/incidents", params={"service": "checkout",
                                                          "source": "monitor"},
                             headers=svc.headers("viewer"))
    return [i for i in r.json()["items"] if i["dedup_key"] == dedup_key]


async def test_documented_trigger_opens_then_appends(svc: Running) -> None:
    r = await svc.client.post("/v2/enqueue", json=DOC_TRIGGER)
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "success", "message": "Event processed",
                        "dedup_key": "srv01/mysql"}
    [incident] = await monitor_incidents(svc, "srv01/mysql")
    assert incident["title"] == "DISK at 99% on machine prod-datapipe03.example.com"
    assert incident["priority"] == 1 and incident["major"] is True
    assert incident["environment"] == "production" and incident["alert_count"] == 1
    assert "free space" in incident["description"]

    again = await svc.client.post("/v2/enqueue", json=DOC_TRIGGER)
    assert again.status_code == 202
    [same] = await monitor_incidents(svc, "srv01/mysql")
    assert same["id"] == incident["id"] and same["alert_count"] == 2

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
    [incident] = await monitor_incidents(svc, "samplekeyhere")
    assert incident["priority"] == 5

    ack = await svc.client.post("/v2/enqueue", json=DOC_ACKNOWLEDGE)
    assert ack.status_code == 202 and ack.json()["dedup_key"] == "samplekeyhere"
    got = (await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                headers=svc.headers("viewer"))).json()
    assert got["status"] == "acknowledged" and got["acknowledged_at"] is not None
    again = await svc.client.post("/v2/enqueue", json=DOC_ACKNOWLEDGE)
    assert again.status_code == 202

    resolve = await svc.client.post("/v2/enqueue", json=DOC_RESOLVE)
    assert resolve.status_code == 202
    got = (await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                headers=svc.headers("viewer"))).json()
    assert got["status"] == "resolved" and got["resolution_code"] == "resolved_by_caller"

    # A trigger after the resolve is a new occurrence: a new incident, as in PagerDuty.
    await svc.client.post("/v2/enqueue", json=DOC_OVERVIEW_TRIGGER)
    both = await monitor_incidents(svc, "samplekeyhere")
    assert len(both) == 2 and {i["status"] for i in both} == {"resolved", "new"}
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) >= 4)
    moves = [e.data["to"] for e in events if e.type == "tandem.incident.transitioned"]
    assert moves == ["acknowledged", "resolved"]


async def test_resolve_reaches_an_incident_on_hold(svc: Running) -> None:
    key = uuid.uuid4().hex
    await svc.client.post("/v2/enqueue", json={**DOC_TRIGGER, "dedup_key": key})
    [incident] = await monitor_incidents(svc, key)
    await svc.move(incident, "in_progress")
    await svc.move(incident, "on_hold", on_hold_reason="awaiting_vendor")
    await svc.client.post("/v2/enqueue", json={**DOC_RESOLVE, "dedup_key": key})
    got = (await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                headers=svc.headers("viewer"))).json()
    assert got["status"] == "resolved"


async def test_racing_triggers_open_one_incident(svc: Running) -> None:
    key = uuid.uuid4().hex
    answers = await asyncio.gather(*(svc.client.post("/v2/enqueue",
                                                     json={**DOC_TRIGGER, "dedup_key": key})
                                     for _ in range(5)))
    assert [a.status_code for a in answers] == [202] * 5
    [incident] = await monitor_incidents(svc, key)
    assert incident["alert_count"] == 5


async def test_trigger_without_dedup_key_gets_one(svc: Running) -> None:
    body = {**DOC_TRIGGER, "routing_key": "stagingkey"}
    del body["dedup_key"]
    r = await svc.client.post("/v2/enqueue", json=body)
    assert r.status_code == 202
    key = r.json()["dedup_key"]
    assert key and len(key) <= 255
    found = (await svc.client.get("/api/v1/incidents", params={"service": "search"},
                                  headers=svc.headers("viewer"))).json()["items"]
    [incident] = [i for i in found if i["dedup_key"] == key]
    assert incident["environment"] == "staging"


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
