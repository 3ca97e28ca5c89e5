"""Recovery from a failed deploy at the deployments service, over HTTP with the real broker
(the incident and its freeze arrive as events): a rollback and a fix forward pass the freeze
of the failure's own incident, asking the changes service for an emergency change linked to
it; every other deploy is still held; ``fixes`` that names no open incident of the service is
a 422 naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from deployments_support import Stack, freeze_of, incident_of, service_name

from deployments.models import FreezeView, IncidentView

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def move(stack: Stack, dep: dict[str, Any], *moves: str) -> None:
    for to in moves:
        r = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                    json={"to": to}, headers=stack.headers())
        assert r.status_code == 200, r.text


async def failed_and_frozen(stack: Stack, svc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """1.0 succeeded, 1.1 failed; its S2 incident (P2) and that incident's freeze are known."""
    good = await stack.deploy(svc, version="1.0")
    await move(stack, good, "in_progress", "succeeded")
    bad = await stack.deploy(svc, version="1.1")
    await move(stack, bad, "in_progress", "failed")
    incident = {**incident_of(svc, 2), "cause_deployment_id": uuid.UUID(bad["id"])}
    await stack.incident(incident)
    own = freeze_of([svc], source="incident", incident_id=incident["id"])
    await stack.freeze(own)
    await stack.projected(IncidentView, incident["id"])
    await stack.projected(FreezeView, own["id"])
    return bad, incident


def codes(dep: dict[str, Any]) -> list[str]:
    return [r["code"] for r in dep["gate"]["reasons"]]


async def test_a_rollback_passes_its_failures_freeze_with_an_emergency_change(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    bad, incident = await failed_and_frozen(stack, svc)
    held = await stack.deploy(svc, version="1.2")  # not a recovery: the freeze holds it
    assert (held["gate"]["decision"], codes(held)) == ("prevented", ["freeze_active"])
    assert (held["rework"], held["recovery"]) == (False, None)

    rollback = await stack.deploy(svc, version="1.0")
    assert rollback["gate"]["decision"] == "allowed"
    assert codes(rollback) == ["recovery", "emergency_change_recorded"]
    assert rollback["rework"] is True
    assert rollback["recovery"] == {"kind": "rollback", "deployment_id": bad["id"],
                                    "incident_id": str(incident["id"])}
    events = await stack.watcher.wait_for(lambda evs: any(
        e.subject == rollback["id"] and e.type == "tandem.deployment.gate_decided"
        for e in evs))
    [decided] = [e for e in events if e.subject == rollback["id"]
                 and e.type == "tandem.deployment.gate_decided"]
    request = decided.data["change_request"]
    assert (request["type"], request["incident_id"]) == ("emergency", str(incident["id"]))
    assert "Rollback" in request["description"]


async def test_a_fix_forward_names_the_incident_and_passes_its_freeze(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    bad, incident = await failed_and_frozen(stack, svc)
    fix = await stack.deploy(svc, version="1.1.1", fixes=incident["number"])
    assert fix["gate"]["decision"] == "allowed"
    assert (fix["fixes"], fix["rework"]) == (incident["number"], True)
    assert fix["recovery"] == {"kind": "fix_forward", "deployment_id": bad["id"],
                               "incident_id": str(incident["id"])}


async def test_an_incident_not_caused_by_a_deployment_keeps_its_freeze(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    monitor = incident_of(svc, 1)
    await stack.incident(monitor)
    own = freeze_of([svc], source="incident", incident_id=monitor["id"])
    await stack.freeze(own)
    await stack.projected(FreezeView, own["id"])
    fix = await stack.deploy(svc, version="2.0.1", fixes=monitor["number"])
    # Rework (it names the incident), but a person's emergency change is what passes.
    assert (fix["gate"]["decision"], codes(fix)) == ("prevented", ["freeze_active"])
    assert fix["rework"] is True and fix["recovery"]["kind"] == "fix_forward"


async def test_fixes_naming_no_open_incident_of_the_service_is_refused(
        stack: Stack, gate_mode: object) -> None:
    svc, other = service_name(), service_name()
    elsewhere = incident_of(other, 3)
    await stack.incident(elsewhere)
    closed = incident_of(svc, 3, status="resolved")
    await stack.incident(closed)
    await stack.projected(IncidentView, elsewhere["id"])
    await stack.projected(IncidentView, closed["id"])
    for number, why in ((elsewhere["number"], f"of {other}"), (closed["number"], "resolved"),
                        ("INC9999999", "not known"), ("nonsense", "INC")):
        r = await stack.client.post("/api/v1/deployments", headers=stack.headers(), json={
            "service": svc, "environment": "production", "version": "3", "fixes": number})
        assert r.status_code == 422, r.text
        problem = r.json()
        assert [e["field"] for e in problem["errors"]][-1].endswith("fixes"), problem
        assert why in r.text
    r = await stack.client.post("/api/v1/deployments", headers=stack.headers(), json={
        "service": svc, "environment": "staging", "version": "3",
        "fixes": elsewhere["number"]})
    assert r.status_code == 422 and "production" in r.text
