"""SLA breaches fire exactly once (two replicas, a restart), and owners edit the policy."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

from incidents_support import Running, replica

from incidents.config import MIGRATIONS_DIR
from incidents.sla import check_once
from tandem.db import Database
from tandem.events import CloudEvent
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import TopicWatcher

#: P4 and P5 incidents get tiny targets, so breaches come due within the test (P4's response
#: target leaves a slow machine time to acknowledge).
FAST_SLA = {"sla_targets": "1=15m/4h,2=30m/8h,3=4h/3d,4=1m/2s,5=1s/2s",
            "sla_check_interval_s": 0.1}


def breaches(events: list[CloudEvent], subject: str) -> Counter[str]:
    """Breach kinds published about ``subject``, counting each event id once."""
    unique = {e.id: e for e in events
              if e.subject == subject and e.type == "tandem.incident.sla_breached"}
    return Counter(e.data["breach"]["kind"] for e in unique.values())


async def timeline_breaches(svc: Running, incident: dict[str, Any]) -> Counter[str]:
    r = await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                             headers=svc.headers("viewer"))
    return Counter(i["data"]["breach"]["kind"] for i in r.json()["items"]
                   if i["type"] == "tandem.incident.sla_breached")


async def test_breach_fires_once_with_two_replicas_and_after_a_restart(
        broker: EmbeddedBroker, platform: PlatformSettings, new_database: Any) -> None:
    url = await new_database("incidents")
    upgrade(MIGRATIONS_DIR, url)
    async with TopicWatcher(platform, platform.topic("incidents")) as watcher:
        async with replica(broker, platform, url, **FAST_SLA) as a, \
                replica(broker, platform, url, **FAST_SLA) as b:
            late = await a.create(impact=3, urgency=3)
            acked = await b.create(impact=3, urgency=2)
            assert (await b.move(acked, "acknowledged")).status_code == 200
            on_time = await a.create(impact=3, urgency=3)
            await a.move(on_time, "resolved", resolution_code="solution_provided",
                         resolution_notes="fixed fast")
            assert late["priority"] == 5
            due = datetime.fromisoformat(late["response_due_at"])
            assert (due - datetime.fromisoformat(late["reported_at"])).total_seconds() == 1

            await watcher.wait_for(lambda evs: breaches(evs, late["id"])["resolution"] == 1
                                   and breaches(evs, acked["id"])["resolution"] == 1)
            got = (await a.client.get(f"/api/v1/incidents/{late['id']}",
                                      headers=a.headers("viewer"))).json()
            assert got["response_breached_at"] is not None
            assert got["resolution_breached_at"] is not None

        # A restarted service checks again; a fresh incident's breaches show it has run.
        async with replica(broker, platform, url, **FAST_SLA) as c:
            marker = await c.create(impact=3, urgency=3)
            events = await watcher.wait_for(
                lambda evs: breaches(evs, marker["id"])["resolution"] == 1)
            assert breaches(events, late["id"]) == {"response": 1, "resolution": 1}
            assert breaches(events, acked["id"]) == {"resolution": 1}
            assert breaches(events, on_time["id"]) == {}
            assert await timeline_breaches(c, late) == {"response": 1, "resolution": 1}
            assert await timeline_breaches(c, acked) == {"resolution": 1}

            # Checks racing on one database (as replicas do) record each breach once.
            racers = [Database(url, topic=platform.topic("incidents")) for _ in range(4)]
            try:
                results = await asyncio.gather(*(check_once(db) for db in racers))
            finally:
                for db in racers:
                    await db.dispose()
            assert sum(results) == 0
            breached = (await c.client.get(f"/api/v1/incidents/{late['id']}",
                                           headers=c.headers("viewer"))).json()
            assert breached["version"] == got["version"]


async def test_concurrent_checks_record_each_due_breach_once(
        broker: EmbeddedBroker, platform: PlatformSettings, new_database: Any) -> None:
    url = await new_database("incidents")
    upgrade(MIGRATIONS_DIR, url)
    # No background check here (a day apart): only the racing calls below record breaches.
    slow = {**FAST_SLA, "sla_check_interval_s": 86400.0}
    async with replica(broker, platform, url, **slow) as svc:
        # The job's first pass runs at start-up, before any incident exists.
        incidents = [await svc.create(impact=3, urgency=3) for _ in range(3)]
        deadline = max(datetime.fromisoformat(i["resolution_due_at"]) for i in incidents)
        racers = [Database(url, topic=platform.topic("incidents")) for _ in range(4)]
        try:
            results = await asyncio.gather(*(check_once(db, now=deadline) for db in racers))
            again = await asyncio.gather(*(check_once(db, now=deadline) for db in racers))
        finally:
            for db in racers:
                await db.dispose()
        # Each incident breached response and resolution: six breaches, recorded once each.
        assert sum(results) == 6 and sum(again) == 0
        for incident in incidents:
            assert await timeline_breaches(svc, incident) == {"response": 1, "resolution": 1}
        events = await svc.events_about(incidents[0]["id"], until=lambda evs: len(evs) == 3)
        breach = events[-1].data["breach"]
        assert breach["priority"] == 5 and events[-1].actor == "tandem-incidents"
        assert events[-1].sequence == 3


async def test_owner_edits_matrix_and_sla_targets(
        broker: EmbeddedBroker, platform: PlatformSettings, new_database: Any) -> None:
    url = await new_database("incidents")
    upgrade(MIGRATIONS_DIR, url)
    async with replica(broker, platform, url) as svc:
        seeded = (await svc.client.get("/api/v1/incident-policy",
                                       headers=svc.headers("viewer"))).json()
        assert seeded["priority_matrix"] == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]
        assert seeded["sla_targets"]["1"] == {"response_seconds": 900,
                                              "resolution_seconds": 14400}
        assert seeded["sla_targets"]["5"] == {"response_seconds": None,
                                              "resolution_seconds": None}
        assert seeded["version"] == 0
        older = await svc.create(impact=3, urgency=3)

        edit = {"priority_matrix": [[1, 2, 3], [2, 3, 4], [3, 4, 4]],
                "sla_targets": {"4": {"response_seconds": 600, "resolution_seconds": 7200}}}
        for role in ("practitioner", "manager"):
            r = await svc.client.patch("/api/v1/incident-policy", json=edit,
                                       headers=svc.headers(role))
            assert r.status_code == 403
        for bad in ({"priority_matrix": [[1, 2], [2, 3]]},
                    {"priority_matrix": [[1, 2, 3], [2, 3, 4], [3, 4, 6]]},
                    {"sla_targets": {"6": {"response_seconds": 1}}},
                    {"sla_targets": {"1": {"response_seconds": -5}}}, {}):
            r = await svc.client.patch("/api/v1/incident-policy", json=bad,
                                       headers=svc.headers("owner"))
            assert r.status_code == 422, (bad, r.text)
        r = await svc.client.patch("/api/v1/incident-policy", json=edit,
                                   headers=svc.headers("owner", sub="olga"))
        assert r.status_code == 200, r.text
        policy = r.json()
        assert policy["version"] == 1 and policy["updated_by"] == "olga"
        assert policy["sla_targets"]["1"]["response_seconds"] == 900
        stale = await svc.client.patch("/api/v1/incident-policy", json=edit,
                                       headers={**svc.headers("owner"), "If-Match": '"0"'})
        assert stale.status_code == 412

        incident = await svc.create(impact=3, urgency=3)
        assert incident["priority"] == 4
        reported = datetime.fromisoformat(incident["reported_at"])
        assert (datetime.fromisoformat(incident["response_due_at"]) - reported).seconds == 600

        # An incident from before keeps its priority until its impact or urgency is edited.
        url = f"/api/v1/incidents/{older['id']}"
        kept = await svc.client.patch(url, json={"assignee": "ana"}, headers=svc.headers())
        assert kept.json()["priority"] == 5 and kept.json()["response_due_at"] is None
        rated = await svc.client.patch(url, json={"urgency": 3}, headers=svc.headers())
        assert rated.json()["priority"] == 4 and rated.json()["response_due_at"] is not None
