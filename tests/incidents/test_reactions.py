"""S2 and S3, driven by deployment and change events a test publishes on their topics."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from incidents_support import (
    Running,
    change_event,
    deployment,
    deployment_event,
    run_deployment,
    unique_service,
)

from tandem_testing import TopicWatcher, eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def change(service: str, status: str, environment: str = "production") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "number": f"CHG{uuid.uuid4().int % 10**7:07d}",
            "type": "normal", "title": "Raise pool size", "service": service,
            "environment": environment, "status": status, "planned_start": None,
            "planned_end": None, "incident_id": None, "deployment_id": None, "close_code": None}


async def incidents_of(svc: Running, service: str) -> list[dict[str, Any]]:
    r = await svc.client.get("/api/v1/incidents", params={"service": service},
                             headers=svc.headers("viewer"))
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_failed_production_deployment_opens_one_incident(svc: Running) -> None:
    service = unique_service()
    change_id = str(uuid.uuid4())
    d = deployment(service, change_id=change_id,
                   started=datetime.now(UTC) - timedelta(minutes=5))
    await run_deployment(svc, d, "in_progress", "failed")
    # Staging failures and production successes open nothing.
    await run_deployment(svc, deployment(service, environment="staging"), "in_progress",
                         "failed")
    await run_deployment(svc, deployment(service), "in_progress", "succeeded")

    [incident] = await eventually(lambda: incidents_of(svc, service))  # type: ignore[misc]
    assert incident["source"] == "deployment"
    assert incident["cause_deployment_id"] == d["id"]
    assert incident["cause_change_id"] == change_id
    assert incident["cause_status"] == "declared"
    assert incident["environment"] == "production"
    assert d["number"] in incident["title"] and "failed" in incident["title"]
    assert incident["description"].startswith(f"Version 1.4.2 of {service} failed")

    # A redelivered event and a later move of the same deployment open nothing new.
    failed = deployment_event("tandem.deployment.transitioned", sequence=3,
                              deployment={**d, "status": "failed", "version": 3},
                              **{"from": "in_progress", "to": "failed", "reason": ""})
    await svc.publish("deployments", failed)
    await svc.publish("deployments", failed)
    await svc.publish("deployments", deployment_event(
        "tandem.deployment.transitioned", sequence=4,
        deployment={**d, "status": "rolled_back", "version": 4},
        **{"from": "failed", "to": "rolled_back", "reason": "reverted"}))

    async def annotated() -> list[Any]:
        r = await svc.client.get(f"/api/v1/incidents/{incident['id']}/notes",
                                 headers=svc.headers("viewer"))
        return [n for n in r.json()["items"] if n["kind"] == "deployment"]

    [note] = await eventually(annotated)  # type: ignore[misc]
    assert "rolled back" in note["text"]
    assert len(await incidents_of(svc, service)) == 1
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) >= 3)
    assert events[0].type == "tandem.incident.created"
    assert events[0].data["incident"]["cause_deployment_id"] == d["id"]
    # The failed deployment itself ran within the window: it is a suspect.
    assert events[1].type == "tandem.incident.suspects_found"
    assert d["id"] in [s["id"] for s in events[1].data["suspects"]]


async def test_suspects_newest_first_and_a_manager_confirms_the_cause(svc: Running) -> None:
    service = unique_service()
    now = datetime.now(UTC)
    change_id = str(uuid.uuid4())
    # Published before deployments carried software_version: projected with none.
    older = deployment(service, started=now - timedelta(hours=2), software_version=None)
    newer = deployment(service, started=now - timedelta(minutes=30), change_id=change_id)
    too_old = deployment(service, started=now - timedelta(days=2))
    staging = deployment(service, environment="staging", started=now - timedelta(minutes=10))
    elsewhere = deployment(unique_service(), started=now - timedelta(minutes=10))
    never_ran = deployment(service)
    for d in (older, newer, too_old, staging, elsewhere):
        await run_deployment(svc, d, "in_progress", "succeeded")
    await run_deployment(svc, never_ran, "canceled")
    implemented = change(service, "scheduled")
    await svc.publish("changes", change_event("tandem.change.created", sequence=1,
                                              change=implemented))
    await svc.publish("changes", change_event(
        "tandem.change.transitioned", sequence=2, change={**implemented, "status": "implement"},
        **{"from": "scheduled", "to": "implement", "reason": ""}))
    pending = change(service, "assess")
    await svc.publish("changes", change_event("tandem.change.created", sequence=1,
                                              change=pending))

    incident = await svc.create(service=service, impact=1, urgency=1)

    async def suspects() -> list[dict[str, Any]] | None:
        r = await svc.client.get(f"/api/v1/incidents/{incident['id']}/suspects",
                                 headers=svc.headers("viewer"))
        items = r.json()["items"]
        return items if len(items) == 3 else None

    found = await eventually(suspects)
    assert [s["id"] for s in found] == [implemented["id"], newer["id"], older["id"]]  # type: ignore[index]
    assert [s["kind"] for s in found] == ["change", "deployment", "deployment"]  # type: ignore[union-attr]
    assert [s["version"] for s in found] == [None, "1.4.2", None]  # type: ignore[union-attr]

    # A later incident on the service finds them at once and says so in an event.
    later = await svc.create(service=service)
    assert later["version"] == 2
    events = await svc.events_about(later["id"], until=lambda evs: len(evs) == 2)
    assert events[1].type == "tandem.incident.suspects_found"
    assert [s["id"] for s in events[1].data["suspects"]] == [s["id"] for s in found]  # type: ignore[union-attr]

    url = f"/api/v1/incidents/{incident['id']}/cause"
    assert (await svc.client.post(url, json={"deployment_id": newer["id"]},
                                  headers=svc.headers())).status_code == 403
    assert (await svc.client.post(url, json={}, headers=svc.headers("manager"))).status_code \
        == 422
    assert (await svc.client.post(url, json={"deployment_id": "nope"},
                                  headers=svc.headers("manager"))).status_code == 422
    r = await svc.client.post(url, json={"deployment_id": newer["id"]},
                              headers=svc.headers("manager", sub="maria"))
    assert r.status_code == 200, r.text
    confirmed = r.json()
    assert confirmed["cause_deployment_id"] == newer["id"]
    assert confirmed["cause_change_id"] == change_id
    assert confirmed["cause_status"] == "confirmed" and confirmed["cause_confirmed_by"] == "maria"
    repeat = await svc.client.post(url, json={"deployment_id": newer["id"]},
                                   headers=svc.headers("manager"))
    assert repeat.json()["version"] == confirmed["version"]
    by_change = (await svc.client.post(url, json={"change_id": implemented["id"]},
                                       headers=svc.headers("manager"))).json()
    assert by_change["cause_deployment_id"] is None

    events = await svc.events_about(
        incident["id"],
        until=lambda evs: sum(e.type == "tandem.incident.cause_confirmed" for e in evs) == 2)
    first, second = [e for e in events if e.type == "tandem.incident.cause_confirmed"]
    assert first.data["deployment_id"] == newer["id"] and first.data["change_id"] == change_id
    assert first.data["priority"] == 1 and first.actor == "maria"
    assert second.data["deployment_id"] is None and second.data["change_id"] == implemented["id"]


async def test_an_unusable_event_is_dead_lettered_and_blocks_nothing(svc: Running) -> None:
    service = unique_service()
    broken = deployment_event("tandem.deployment.transitioned", sequence=2,
                              deployment={"id": str(uuid.uuid4()), "service": service},
                              **{"from": "in_progress", "to": "failed"})
    await svc.publish("deployments", broken)
    await run_deployment(svc, deployment(service), "in_progress", "rolled_back")
    async with TopicWatcher(svc.platform, svc.platform.dlq_topic("incidents")) as dlq:
        records = await dlq.wait_for(lambda evs: any(e.id == broken.id for e in evs))
    assert [e for e in records if e.id == broken.id]
    [incident] = await eventually(lambda: incidents_of(svc, service))  # type: ignore[misc]
    assert "rolled back" in incident["title"]
