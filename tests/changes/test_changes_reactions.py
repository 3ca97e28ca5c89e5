"""Reactions across the wall: S4 incident freezes, confirmed causes, S5 and S1 from deployments.

Events of the other services are published onto their topics with the fields documented in
docs/architecture.md; the changes service consumes them from the real broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from changes_support import ChangesService, unique_service

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def incident(service: str, *, priority: int, status: str = "new",
             id_: str | None = None, environment: str = "production") -> dict[str, Any]:
    return {"id": id_ or str(uuid.uuid4()), "number": "INC0000042", "title": "API down",
            "service": service, "environment": environment, "priority": priority,
            "major": priority <= 2, "status": status, "cause_deployment_id": None,
            "cause_change_id": None, "reported_at": datetime.now(UTC).isoformat(),
            "acknowledged_at": None, "resolved_at": None, "closed_at": None}


def deployment(service: str, *, status: str, change_id: str | None = None,
               id_: str | None = None) -> dict[str, Any]:
    return {"id": id_ or str(uuid.uuid4()), "number": "DEP0000007", "service": service,
            "environment": "production", "version": "1.2.3", "commits": [],
            "change_id": change_id, "status": status,
            "gate": {"decision": "allowed", "reasons": [], "change_id": change_id,
                     "mode": "receipt"},
            "started_at": None, "finished_at": None}


def now_window(hours: float = 1) -> dict[str, str]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    return {"planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=hours)).isoformat()}


async def get_change(svc: ChangesService, ref: str) -> dict[str, Any]:
    r = await svc.client.get(f"/api/v1/changes/{ref}", headers=svc.auth("viewer"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def scheduled_change(svc: ChangesService, service: str, type_: str = "standard",
                           **extra: Any) -> dict[str, Any]:
    r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner", "pat"), json={
        "type": type_, "title": "Ship it", "service": service, "environment": "production",
        **now_window(), **extra})
    assert r.status_code == 201, r.text
    change = r.json()
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "scheduled"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def incident_freezes(svc: ChangesService, service: str) -> list[dict[str, Any]]:
    r = await svc.client.get("/api/v1/freezes", headers=svc.auth("viewer"), params={
        "status": "scheduled,active,ended", "source": "incident", "service": service})
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_open_major_incident_freezes_its_service_until_resolved(
        svc: ChangesService) -> None:
    service = unique_service()
    change = await scheduled_change(svc, service)
    p1 = incident(service, priority=1)
    await svc.publish("incidents", "tandem.incident.created", p1["id"], {"incident": p1})

    async def frozen() -> list[dict[str, Any]]:
        return [f for f in await incident_freezes(svc, service) if f["status"] == "active"]

    freeze = (await eventually(frozen))[0]  # type: ignore[index]
    assert freeze["source"] == "incident" and freeze["incident_id"] == p1["id"]
    assert freeze["services"] == [service] and freeze["ends_at"] is None
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "implement"}, headers=svc.auth("practitioner"))
    assert r.status_code == 409 and r.json()["type"] == "urn:tandem:problem:frozen"
    # Risk rules see the open major incident too.
    r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner"), json={
        "type": "emergency", "title": "Hotfix", "service": service,
        "environment": "production", "incident_id": p1["id"]})
    assert r.json()["risk"] == "very_high"
    # Later events about the same incident do not open a second freeze.
    await svc.publish("incidents", "tandem.incident.transitioned", p1["id"],
                      {"incident": {**p1, "status": "acknowledged"}, "from": "new",
                       "to": "acknowledged", "reason": ""})
    await svc.publish("incidents", "tandem.incident.transitioned", p1["id"],
                      {"incident": {**p1, "status": "resolved"}, "from": "acknowledged",
                       "to": "resolved", "reason": "fixed"})
    events = await svc.events_about(freeze["id"], lambda evs: len(evs) >= 2)
    assert [e.type for e in events] == ["tandem.freeze.created", "tandem.freeze.transitioned"]
    assert events[1].data["freeze"]["status"] == "ended"
    assert events[1].data["freeze"]["ends_at"] is not None
    assert len(await incident_freezes(svc, service)) == 1
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "implement"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text


async def test_the_emergency_fix_of_a_major_incident_is_scheduled_through_its_freeze(
        svc: ChangesService) -> None:
    service = unique_service()
    p1 = incident(service, priority=1)
    await svc.publish("incidents", "tandem.incident.created", p1["id"], {"incident": p1})

    async def frozen() -> list[dict[str, Any]]:
        return [f for f in await incident_freezes(svc, service) if f["status"] == "active"]

    freeze = (await eventually(frozen))[0]  # type: ignore[index]

    async def emergency(incident_id: str | None) -> dict[str, Any]:
        r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner", "pat"),
                                  json={"type": "emergency", "title": "Hotfix", "service": service,
                                        "environment": "production", "incident_id": incident_id,
                                        **now_window()})
        assert r.status_code == 201, r.text
        r = await svc.client.post(f"/api/v1/changes/{r.json()['id']}/transitions",
                                  json={"to": "authorize"}, headers=svc.auth("practitioner", "pat"))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    async def conflicts(change: dict[str, Any]) -> list[str]:
        r = await svc.client.get(f"/api/v1/changes/{change['id']}/conflicts",
                                 headers=svc.auth("viewer"))
        assert r.status_code == 200, r.text
        return [c["number"] for c in r.json()["items"]]

    async def approve(change: dict[str, Any]) -> dict[str, Any]:
        r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                                  json={"decision": "approve"},
                                  headers=svc.auth("manager", "carol"))
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    # The fix linked to the incident: its own freeze is no conflict, one approval schedules it,
    # and it may be implemented while the service stays frozen.
    fix = await emergency(p1["id"])
    assert await conflicts(fix) == []
    assert (await approve(fix))["status"] == "scheduled"
    r = await svc.client.post(f"/api/v1/changes/{fix['id']}/transitions",
                              json={"to": "implement"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    # An emergency change for no incident still meets the freeze (and the fix's slot).
    other = await emergency(None)
    assert await conflicts(other) == [fix["number"], freeze["number"]]
    assert (await approve(other))["status"] == "authorize"
    # So does a manual freeze, even for the incident's own fix.
    r = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager", "carol"), json={
        "services": [service], "starts_at": datetime.now(UTC).isoformat(),
        "ends_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
        "reason": "quarter end"})
    assert r.status_code == 201, r.text
    assert await conflicts(fix) == [r.json()["number"]]


async def test_lower_priority_incident_sets_risk_but_no_freeze(svc: ChangesService) -> None:
    service = unique_service()
    p3 = incident(service, priority=3, environment="staging")
    await svc.publish("incidents", "tandem.incident.created", p3["id"], {"incident": p3})

    async def risk_sees_it() -> bool:
        r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner"), json={
            "type": "standard", "title": "Probe", "service": service, "environment": "staging"})
        return r.json()["risk_rule"] == "the service has open incidents"

    await eventually(risk_sees_it)
    assert await incident_freezes(svc, service) == []


async def test_confirmed_cause_marks_the_change_and_lowers_the_score(
        svc: ChangesService) -> None:
    service = unique_service()
    change = await scheduled_change(svc, service)
    for to, extra in (("implement", {}), ("review", {}),
                      ("closed", {"close_code": "successful"})):
        r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                                  json={"to": to, **extra}, headers=svc.auth("practitioner"))
        assert r.status_code == 200, r.text
    p1 = incident(service, priority=1, status="resolved")
    event = await svc.publish("incidents", "tandem.incident.cause_confirmed", p1["id"], {
        "incident": p1, "change_id": change["id"], "deployment_id": None, "priority": 1},
        actor="mia")
    await svc.send("incidents", event)  # a redelivery changes nothing

    async def marked() -> dict[str, Any] | None:
        got = await get_change(svc, change["id"])
        return got if got["caused_incidents"] else None

    got = await eventually(marked)
    assert got["caused_incidents"] == [p1["id"]]  # type: ignore[index]
    events = await svc.events_about(change["id"],
                                    lambda evs: evs[-1].type == "tandem.change.updated")
    assert events[-1].data["changes"]["caused_incidents"] == [[], [p1["id"]]]
    assert events[-1].actor == "mia"
    score = (await svc.client.get(f"/api/v1/change-success-scores/{service}",
                                  headers=svc.auth("viewer"))).json()
    assert score == {"service": service, "score": 3 - 10, "closed_changes": 1,
                     "caused_incidents": 1}


async def test_change_follows_its_deployment(svc: ChangesService) -> None:
    service = unique_service()
    good = await scheduled_change(svc, service)
    dep = deployment(service, status="in_progress", change_id=good["id"])
    await svc.publish("deployments", "tandem.deployment.transitioned", dep["id"], {
        "deployment": dep, "from": "requested", "to": "in_progress", "reason": ""},
        actor="ci")

    async def status_of(ref: str, wanted: str) -> bool:
        return (await get_change(svc, ref))["status"] == wanted

    await eventually(lambda: status_of(good["id"], "implement"))
    await svc.publish("deployments", "tandem.deployment.transitioned", dep["id"], {
        "deployment": {**dep, "status": "succeeded"}, "from": "in_progress",
        "to": "succeeded", "reason": ""}, actor="ci")
    await eventually(lambda: status_of(good["id"], "review"))
    events = await svc.events_about(good["id"], lambda evs: len(evs) >= 4)
    assert [e.data.get("to") for e in events[-2:]] == ["implement", "review"]
    assert events[-1].actor == "ci"

    bad = await scheduled_change(svc, unique_service())
    dep2 = deployment(bad["service"], status="in_progress", change_id=bad["id"])
    await svc.publish("deployments", "tandem.deployment.transitioned", dep2["id"], {
        "deployment": dep2, "from": "requested", "to": "in_progress", "reason": ""})
    await svc.publish("deployments", "tandem.deployment.transitioned", dep2["id"], {
        "deployment": {**dep2, "status": "failed"}, "from": "in_progress", "to": "failed",
        "reason": "smoke tests"})

    async def marked() -> dict[str, Any] | None:
        got = await get_change(svc, bad["id"])
        return got if got["marked_unsuccessful"] and got["status"] == "review" else None

    await eventually(marked)
    r = await svc.client.post(f"/api/v1/changes/{bad['id']}/transitions", json={"to": "closed"},
                              headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    assert r.json()["close_code"] == "unsuccessful"
    score = (await svc.client.get(f"/api/v1/change-success-scores/{bad['service']}",
                                  headers=svc.auth("viewer"))).json()
    assert score["score"] == -5


async def test_gate_request_records_a_standard_change_as_scheduled(svc: ChangesService) -> None:
    service = unique_service()
    dep = deployment(service, status="requested")
    request = {"type": "standard", "title": f"Deploy {service} 1.2.3", "description": "receipt",
               "service": service, "environment": "production", **now_window()}
    data = {"deployment": dep, "gate": dep["gate"], "change_request": request}
    await svc.publish("deployments", "tandem.deployment.gate_decided", dep["id"], data,
                      actor="ci-bot")
    await svc.publish("deployments", "tandem.deployment.gate_decided", dep["id"], data,
                      actor="ci-bot")

    async def created() -> list[dict[str, Any]]:
        r = await svc.client.get("/api/v1/changes", headers=svc.auth("viewer"),
                                 params={"deployment_id": dep["id"]})
        return r.json()["items"]  # type: ignore[no-any-return]

    change = (await eventually(created))[0]  # type: ignore[index]
    assert change["status"] == "scheduled" and change["type"] == "standard"
    assert change["deployment_id"] == dep["id"] and change["requested_by"] == "ci-bot"
    events = await svc.events_about(change["id"], lambda evs: len(evs) >= 2)
    assert [e.type for e in events] == ["tandem.change.created", "tandem.change.transitioned"]
    # The deployment starts without naming the change; the link is the deployment id.
    await svc.publish("deployments", "tandem.deployment.transitioned", dep["id"], {
        "deployment": {**dep, "status": "in_progress"}, "from": "requested",
        "to": "in_progress", "reason": ""}, actor="ci-bot")

    async def implementing() -> bool:
        return (await get_change(svc, change["id"]))["status"] == "implement"

    await eventually(implementing)
    assert len(await created()) == 1


async def test_gate_request_in_approval_mode_waits_for_a_manager(svc: ChangesService) -> None:
    service = unique_service()
    dep = deployment(service, status="requested")
    request = {"type": "normal", "title": f"Deploy {service}", "description": "",
               "service": service, "environment": "production", **now_window()}
    await svc.publish("deployments", "tandem.deployment.gate_decided", dep["id"], {
        "deployment": dep, "gate": {**dep["gate"], "decision": "awaiting"},
        "change_request": request}, actor="ci-bot")

    async def created() -> list[dict[str, Any]]:
        r = await svc.client.get("/api/v1/changes", headers=svc.auth("viewer"),
                                 params={"deployment_id": dep["id"]})
        return r.json()["items"]  # type: ignore[no-any-return]

    change = (await eventually(created))[0]  # type: ignore[index]
    assert change["status"] == "assess" and change["type"] == "normal"
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": "approve"}, headers=svc.auth("manager", "mia"))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "scheduled"
    events = await svc.events_about(change["id"], lambda evs: len(evs) >= 5)
    assert [(e.type.rsplit(".", 1)[1], e.data.get("to")) for e in events] == [
        ("created", None), ("transitioned", "assess"), ("approval_recorded", None),
        ("transitioned", "authorize"), ("transitioned", "scheduled")]


async def test_canceled_deployment_cancels_the_change_it_asked_for(svc: ChangesService) -> None:
    service = unique_service()
    dep = deployment(service, status="requested")
    request = {"type": "normal", "title": f"Deploy {service}", "description": "",
               "service": service, "environment": "production", **now_window()}
    await svc.publish("deployments", "tandem.deployment.gate_decided", dep["id"], {
        "deployment": dep, "gate": dep["gate"], "change_request": request}, actor="ci-bot")
    await svc.publish("deployments", "tandem.deployment.transitioned", dep["id"], {
        "deployment": {**dep, "status": "canceled"}, "from": "requested", "to": "canceled",
        "reason": "pipeline stopped"}, actor="ci-bot")

    async def canceled() -> list[dict[str, Any]]:
        r = await svc.client.get("/api/v1/changes", headers=svc.auth("viewer"),
                                 params={"deployment_id": dep["id"], "status": "canceled"})
        return r.json()["items"]  # type: ignore[no-any-return]

    change = (await eventually(canceled))[0]  # type: ignore[index]
    events = await svc.events_about(change["id"], lambda evs: len(evs) >= 3)
    assert events[-1].data["from"] == "assess" and events[-1].data["to"] == "canceled"
