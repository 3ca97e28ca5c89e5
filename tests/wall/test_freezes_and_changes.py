"""The details ops people check where a freeze, a change and a deployment meet:
incidents, changes and deployments on one set of topics, over HTTP, on both databases.

- an incident's freeze covers the incident's environment only; a manual freeze names the
  environments it covers (default every one); the gate and the changes' conflicts agree;
- a canceled deployment takes the change it carried with it (no longer a conflict, nor a
  suspect);
- two open major incidents on one service: an emergency change fixing one passes the other's
  freeze, in the changes service and at the gate alike, and the pass is recorded.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from wall_support import Wall, events_about, unique

from deployments.models import ChangeView, FreezeView
from deployments.rules.gate import GateMode
from incidents.models import ChangeView as IncidentsChangeView
from incidents.models import DeploymentView as IncidentsDeploymentView

pytestmark = pytest.mark.asyncio(loop_scope="module")


def window(start_in_minutes: float = -5, hours: float = 1) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=start_in_minutes)
    return {"planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=hours)).isoformat()}


async def open_incident(wall: Wall, service: str, environment: str = "production",
                        impact: int = 1, urgency: int = 1) -> dict[str, Any]:
    return await wall.call("incidents", "POST", "/api/v1/incidents", role="practitioner",
                           expect=201, json={"title": f"{service} is down", "service": service,
                                             "environment": environment, "impact": impact,
                                             "urgency": urgency})


async def incident_freeze(wall: Wall, incident_id: str) -> dict[str, Any]:
    """The freeze the incident put on its service, once the deployments service knows it."""
    async def found() -> Any:
        listed = await wall.call("changes", "GET", "/api/v1/freezes",
                                 params={"source": "incident", "limit": 200})
        return next((f for f in listed["items"] if f["incident_id"] == incident_id), None)

    freeze = await wall.until(found)
    await wall.until(lambda: wall.row("deployments", FreezeView, uuid.UUID(freeze["id"])))
    return freeze


async def change(wall: Wall, service: str, change_type: str = "standard",
                 environment: str = "production", **fields: Any) -> dict[str, Any]:
    body = {"type": change_type, "title": f"{change_type} change of {service}",
            "service": service, "environment": environment, **window(), **fields}
    return await wall.call("changes", "POST", "/api/v1/changes", role="practitioner",
                           expect=201, json=body)


async def move(wall: Wall, change_id: str, to: str, *, role: str = "practitioner",
               expect: int = 200, **fields: Any) -> Any:
    return await wall.call("changes", "POST", f"/api/v1/changes/{change_id}/transitions",
                           role=role, expect=expect, json={"to": to, **fields})


async def conflicts(wall: Wall, change_id: str) -> list[dict[str, Any]]:
    return (await wall.call("changes", "GET", f"/api/v1/changes/{change_id}/conflicts"))[
        "items"]


async def deploy(wall: Wall, service: str, **fields: Any) -> dict[str, Any]:
    return await wall.call("deployments", "POST", "/api/v1/deployments", role="pipeline",
                           expect=201, json={"service": service, "environment": "production",
                                             "version": "1.0.0", **fields})


# --- freezes cover their environments ---------------------------------------------------------


async def test_a_staging_p1_freezes_staging_only(wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("matrix")
    incident = await open_incident(wall, service, "staging")
    freeze = await incident_freeze(wall, incident["id"])
    assert (freeze["services"], freeze["environments"]) == ([service], ["staging"])

    production = await change(wall, service)
    assert await conflicts(wall, production["id"]) == []
    await move(wall, production["id"], "scheduled")
    assert (await move(wall, production["id"], "implement"))["status"] == "implement"

    dep = await deploy(wall, service)
    assert dep["gate"]["decision"] == "allowed", dep["gate"]

    staging = await change(wall, service, environment="staging")
    assert [c["id"] for c in await conflicts(wall, staging["id"])] == [freeze["id"]]
    await move(wall, staging["id"], "scheduled", role="manager", force=True)
    refused = await move(wall, staging["id"], "implement", expect=409)
    assert refused["type"].endswith("frozen"), refused

    listed = await wall.call("changes", "GET", "/api/v1/freezes",
                             params={"service": service, "environment": "production"})
    assert freeze["id"] not in [f["id"] for f in listed["items"]]


async def test_a_manual_freeze_covers_the_environments_it_names_default_all(wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("ledger")
    now = datetime.now(UTC)
    times = {"starts_at": (now - timedelta(minutes=1)).isoformat(),
             "ends_at": (now + timedelta(hours=1)).isoformat()}
    staging_only = await wall.call(
        "changes", "POST", "/api/v1/freezes", role="manager", expect=201,
        json={"services": [service], "environments": ["staging"], "reason": "staging tests",
              **times})
    assert staging_only["environments"] == ["staging"]
    await wall.until(lambda: wall.row("deployments", FreezeView,
                                      uuid.UUID(staging_only["id"])))
    assert (await deploy(wall, service))["gate"]["decision"] == "allowed"

    everywhere = await wall.call("changes", "POST", "/api/v1/freezes", role="manager",
                                 expect=201, json={"services": [service],
                                                   "reason": "quarter end", **times})
    assert everywhere["environments"] == []
    await wall.until(lambda: wall.row("deployments", FreezeView, uuid.UUID(everywhere["id"])))
    prevented = await deploy(wall, service)
    assert prevented["gate"]["decision"] == "prevented"
    assert everywhere["number"] in prevented["gate"]["reasons"][0]["message"]

    bad = await wall.call("changes", "POST", "/api/v1/freezes", role="manager", expect=422,
                          json={"services": [service], "environments": ["moon"],
                                "reason": "x", **times})
    assert bad["errors"][0]["field"].startswith("environments")


# --- a canceled deployment takes its change with it ---------------------------------------------


async def receipt_of(wall: Wall, deployment_id: str, status: str) -> dict[str, Any]:
    """The change the gate recorded for a deployment, once it is in ``status``."""
    async def found() -> Any:
        listed = await wall.call("changes", "GET", "/api/v1/changes",
                                 params={"deployment_id": deployment_id})
        return next((c for c in listed["items"] if c["status"] == status), None)

    return await wall.until(found)


async def move_deployment(wall: Wall, deployment_id: str, to: str) -> dict[str, Any]:
    return await wall.call("deployments", "POST",
                           f"/api/v1/deployments/{deployment_id}/transitions",
                           role="pipeline", json={"to": to})


async def test_a_canceled_deployment_cancels_its_change_no_conflict_no_suspect(
        wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("matrix")
    dep = await deploy(wall, service)
    assert dep["gate"]["decision"] == "allowed"
    await receipt_of(wall, dep["id"], "scheduled")
    await move_deployment(wall, dep["id"], "in_progress")
    receipt = await receipt_of(wall, dep["id"], "implement")
    await move_deployment(wall, dep["id"], "canceled")
    canceled = await receipt_of(wall, dep["id"], "canceled")
    assert canceled["id"] == receipt["id"]

    later = await change(wall, service, "normal")
    assert [c for c in await conflicts(wall, later["id"]) if c["kind"] == "change"] == []

    async def incidents_know() -> bool:
        seen = await wall.row("incidents", IncidentsChangeView, uuid.UUID(receipt["id"]))
        return seen is not None and seen.status == "canceled"

    await wall.until(incidents_know)
    incident = await open_incident(wall, service, impact=3, urgency=3)
    suspects = await wall.call("incidents", "GET", f"/api/v1/incidents/{incident['id']}/suspects")
    assert [s["id"] for s in suspects["items"]] == []


async def test_a_canceled_deployment_closes_its_change_in_review_unsuccessful(
        wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("matrix")
    dep = await deploy(wall, service)
    await receipt_of(wall, dep["id"], "scheduled")
    await move_deployment(wall, dep["id"], "in_progress")
    receipt = await receipt_of(wall, dep["id"], "implement")
    await move(wall, receipt["id"], "review")
    await move_deployment(wall, dep["id"], "canceled")
    closed = await receipt_of(wall, dep["id"], "closed")
    assert closed["close_code"] == "unsuccessful"


# --- two open major incidents: one rule ---------------------------------------------------------


async def test_an_emergency_fix_of_one_major_incident_passes_the_other_major_incidents_freeze(
        wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("orders")
    first, second = await open_incident(wall, service), await open_incident(wall, service)
    freezes = [await incident_freeze(wall, first["id"]),
               await incident_freeze(wall, second["id"])]

    fix = await change(wall, service, "emergency", incident_id=first["id"])
    assert await conflicts(wall, fix["id"]) == []
    await move(wall, fix["id"], "authorize")
    approved = await wall.call("changes", "POST", f"/api/v1/changes/{fix['id']}/approvals",
                               role="manager", sub="mia", expect=201,
                               json={"decision": "approve"})
    assert (approved["status"], approved["forced"]) == ("scheduled", False)
    assert (await move(wall, fix["id"], "implement"))["status"] == "implement"
    moves = await events_about(wall, "changes", fix["id"], lambda evs: any(
        e.type == "tandem.change.transitioned" and e.data["to"] == "implement" for e in evs))
    passed = {e.data["to"]: sorted(e.data["freezes_passed"]) for e in moves
              if e.type == "tandem.change.transitioned"}
    numbers = sorted(f["number"] for f in freezes)
    assert passed["scheduled"] == numbers and passed["implement"] == numbers

    # The gate applies the same rule to the same change.

    async def gate_knows() -> bool:
        seen = await wall.row("deployments", ChangeView, uuid.UUID(fix["id"]))
        return seen is not None and seen.status == "implement"

    await wall.until(gate_knows)
    dep = await deploy(wall, service, change_id=fix["id"])
    assert dep["gate"]["decision"] == "allowed", dep["gate"]
    assert "emergency_change" in [r["code"] for r in dep["gate"]["reasons"]]

    # Any other change stays held by both freezes, and a deploy without the fix is prevented.
    other = await change(wall, service, "normal")
    assert sorted(c["id"] for c in await conflicts(wall, other["id"]) if c["kind"] == "freeze") \
        == sorted(f["id"] for f in freezes)
    assert (await deploy(wall, service))["gate"]["decision"] == "prevented"


# --- suspects: each deployment once, with its change ------------------------------------------


async def test_suspects_list_each_deployment_once_with_its_change_by_when_it_went_live(
        wall: Wall) -> None:
    wall.deployments.gate_mode = GateMode.receipt
    service = unique("matrix")
    shipped = []
    for version in ("1.0.0", "1.1.0"):
        dep = await deploy(wall, service, version=version)
        await receipt_of(wall, dep["id"], "scheduled")
        await move_deployment(wall, dep["id"], "in_progress")
        await move_deployment(wall, dep["id"], "succeeded")
        shipped.append((dep, await receipt_of(wall, dep["id"], "review")))
    by_hand = await change(wall, service, "normal")
    await move(wall, by_hand["id"], "assess")
    await move(wall, by_hand["id"], "authorize")
    await wall.call("changes", "POST", f"/api/v1/changes/{by_hand['id']}/approvals",
                    role="manager", sub="mia", expect=201, json={"decision": "approve"})
    await move(wall, by_hand["id"], "implement")

    async def incidents_know() -> bool:
        for dep, receipt in shipped:
            d = await wall.row("incidents", IncidentsDeploymentView, uuid.UUID(dep["id"]))
            c = await wall.row("incidents", IncidentsChangeView, uuid.UUID(receipt["id"]))
            if d is None or d.status != "succeeded" or c is None or c.status != "review":
                return False
        c = await wall.row("incidents", IncidentsChangeView, uuid.UUID(by_hand["id"]))
        return c is not None and c.status == "implement"

    await wall.until(incidents_know)
    incident = await open_incident(wall, service, impact=3, urgency=3)
    suspects = (await wall.call("incidents", "GET",
                                f"/api/v1/incidents/{incident['id']}/suspects"))["items"]
    (first, first_receipt), (second, second_receipt) = shipped
    assert [(s["kind"], s["id"]) for s in suspects] == [
        ("change", by_hand["id"]), ("deployment", second["id"]), ("deployment", first["id"])]
    assert [s["change"]["id"] for s in suspects[1:]] == [second_receipt["id"],
                                                         first_receipt["id"]]
    assert suspects[1]["change"]["number"] == second_receipt["number"]
    assert suspects[1]["change_id"] == second_receipt["id"]
