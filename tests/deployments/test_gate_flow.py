"""S1 across the wall: the gate decided from the service's projections of change, freeze and
incident events (published here as the changes and incidents services would), and a pipeline's
long poll woken by the consumed event."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from deployments_support import Stack, change_of, freeze_of, incident_of, service_name

from deployments.models import ChangeView, FreezeView, IncidentView
from tandem.db import utcnow
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def codes(gate: dict[str, Any]) -> list[str]:
    return [r["code"] for r in gate["reasons"]]


async def gate_of(stack: Stack, dep: dict[str, Any], **params: Any) -> dict[str, Any]:
    r = await stack.client.get(f"/api/v1/deployments/{dep['id']}/gate", params=params,
                               headers=stack.headers("viewer"), timeout=90)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def gate_becomes(stack: Stack, dep: dict[str, Any], check: Any) -> dict[str, Any]:
    async def current() -> Any:
        gate = await gate_of(stack, dep)
        return gate if check(gate) else None
    return await eventually(current)  # type: ignore[return-value]


def waiting_on(stack: Stack, dep: dict[str, Any]) -> Any:
    async def check() -> bool:
        return stack.app.state.gate_signals.readers(dep["id"]) > 0
    return check


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_waiting_pipeline_is_answered_when_the_authorizing_event_arrives(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc)
    assert (dep["gate"]["decision"], codes(dep["gate"])) == ("awaiting", ["change_requested"])
    events = await stack.watcher.wait_for(lambda evs: any(
        e.subject == dep["id"] and e.type == "tandem.deployment.gate_decided" for e in evs))
    asked = next(e for e in events if e.subject == dep["id"] and e.sequence == 2)
    assert asked.data["change_request"]["type"] == "normal"

    # The changes service records the normal change it was asked for, in assess.
    change = change_of(svc, "assess", deployment_id=dep["id"])
    await stack.change(change)
    pending = await gate_becomes(stack, dep, lambda g: g["change_id"] == str(change["id"]))
    assert (pending["decision"], codes(pending)) == ("awaiting", ["change_pending"])

    poll = asyncio.create_task(gate_of(stack, dep, wait=30))
    await eventually(waiting_on(stack, dep))
    # Moving on to authorize is no new decision: the pipeline keeps waiting, nothing is
    # published, and the gate stays as it was.
    await stack.change({**change, "status": "authorize"}, "transitioned",
                       **{"from": "assess", "to": "authorize", "reason": "assessed"})
    await stack.projected(ChangeView, change["id"], lambda v: v.status == "authorize")
    assert await gate_of(stack, dep) == pending
    assert not poll.done()

    started = time.monotonic()
    await stack.change({**change, "status": "scheduled"}, "transitioned",
                       **{"from": "authorize", "to": "scheduled", "reason": "approved"})
    answer = await poll
    elapsed = time.monotonic() - started
    # The long poll lasts 30 s: only a pipeline woken by the event is answered well before.
    assert elapsed < 10.0, f"answered {elapsed:.3f}s after the authorizing event"
    assert (answer["decision"], codes(answer)) == ("allowed", ["change_authorized"])
    assert answer["change_id"] == str(change["id"])

    events = await stack.watcher.wait_for(lambda evs: any(
        e.subject == dep["id"] and e.type == "tandem.deployment.gate_decided"
        and e.data["gate"]["decision"] == "allowed" for e in evs))
    decided = [e for e in events if e.subject == dep["id"]]
    assert [e.sequence for e in decided] == list(range(1, len(decided) + 1))
    # created, awaiting, awaiting naming its change, allowed: one event per decision.
    assert [(e.type.rsplit(".", 1)[1], e.data.get("gate", {}).get("decision"))
            for e in decided] == [("created", None), ("gate_decided", "awaiting"),
                                  ("gate_decided", "awaiting"), ("gate_decided", "allowed")]
    assert decided[-1].data["change_request"] is None
    started_dep = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                          json={"to": "in_progress"}, headers=stack.headers())
    assert started_dep.status_code == 200


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_rejected_change_prevents_the_waiting_deployment(stack: Stack,
                                                               gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc)
    change = change_of(svc, "assess", deployment_id=dep["id"])
    await stack.change(change)
    await gate_becomes(stack, dep, lambda g: g["change_id"] == str(change["id"]))
    poll = asyncio.create_task(gate_of(stack, dep, wait=30))
    await eventually(waiting_on(stack, dep))
    await stack.change({**change, "status": "new"}, "approval_recorded", decision="reject")
    answer = await asyncio.wait_for(poll, 20)
    assert (answer["decision"], codes(answer)) == ("prevented", ["change_rejected"])


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_canceled_change_prevents_the_waiting_deployment(stack: Stack,
                                                               gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc)
    change = change_of(svc, "assess", deployment_id=dep["id"])
    await stack.change(change)
    await stack.change({**change, "status": "canceled"}, "transitioned",
                       **{"from": "assess", "to": "canceled", "reason": "not needed"})
    gate = await gate_becomes(stack, dep, lambda g: g["decision"] != "awaiting")
    assert (gate["decision"], codes(gate)) == ("prevented", ["change_canceled"])


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_a_wait_that_runs_out_answers_still_awaiting(stack: Stack,
                                                           gate_mode: object) -> None:
    dep = await stack.deploy(service_name())
    started = time.monotonic()
    gate = await gate_of(stack, dep, wait=0.5)
    assert gate["decision"] == "awaiting"
    assert time.monotonic() - started >= 0.5


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_named_change_not_yet_projected_is_awaited_then_allows(stack: Stack,
                                                                     gate_mode: object) -> None:
    svc = service_name()
    change = change_of(svc, "scheduled")
    dep = await stack.deploy(svc, change_id=str(change["id"]))
    assert (dep["gate"]["decision"], codes(dep["gate"])) == ("awaiting", ["change_unknown"])
    await stack.change(change)
    gate = await gate_becomes(stack, dep, lambda g: g["decision"] != "awaiting")
    assert (gate["decision"], codes(gate)) == ("allowed", ["change_covers"])


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_named_scheduled_change_covering_now_allows_at_once(stack: Stack,
                                                                  gate_mode: object) -> None:
    svc = service_name()
    change = change_of(svc, "implement")
    await stack.change(change)
    await stack.projected(ChangeView, change["id"])
    dep = await stack.deploy(svc, change_id=str(change["id"]))
    assert (dep["gate"]["decision"], codes(dep["gate"])) == ("allowed", ["change_covers"])
    assert dep["gate"]["change_id"] == str(change["id"])


async def test_receipt_links_the_recorded_standard_change(stack: Stack,
                                                          gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc)
    assert dep["gate"]["decision"] == "allowed" and dep["gate"]["change_id"] is None
    change = change_of(svc, "implement", type_="standard", deployment_id=dep["id"])
    await stack.change(change)
    gate = await gate_becomes(stack, dep, lambda g: g["change_id"] == str(change["id"]))
    assert gate["decision"] == "allowed"
    events = await stack.watcher.wait_for(lambda evs: any(
        e.subject == dep["id"] and e.type == "tandem.deployment.updated" for e in evs))
    updated = next(e for e in events if e.subject == dep["id"]
                   and e.type == "tandem.deployment.updated")
    assert updated.data["changes"] == {"gate.change_id": [None, str(change["id"])]}
    assert updated.sequence == 3


async def test_active_freeze_prevents_and_other_services_are_not_frozen(
        stack: Stack, gate_mode: object) -> None:
    svc, other = service_name(), service_name()
    freeze = freeze_of([svc])
    await stack.freeze(freeze)
    await stack.projected(FreezeView, freeze["id"])
    frozen = await stack.deploy(svc)
    assert (frozen["gate"]["decision"], codes(frozen["gate"])) == ("prevented",
                                                                   ["freeze_active"])
    assert (await stack.deploy(other))["gate"]["decision"] == "allowed"
    await stack.freeze({**freeze, "status": "ended"}, "transitioned")
    await stack.projected(FreezeView, freeze["id"], lambda v: v.status == "ended")
    assert (await stack.deploy(svc))["gate"]["decision"] == "allowed"


async def test_open_major_incident_prevents_in_receipt_mode_until_resolved(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    incident = incident_of(svc, priority=2)
    await stack.incident(incident)
    await stack.projected(IncidentView, incident["id"])
    dep = await stack.deploy(svc)
    assert (dep["gate"]["decision"], codes(dep["gate"])) == ("prevented",
                                                             ["major_incident_open"])
    await stack.incident({**incident, "status": "resolved", "resolved_at": utcnow()},
                         "transitioned")
    await stack.projected(IncidentView, incident["id"], lambda v: v.status == "resolved")
    assert (await stack.deploy(svc))["gate"]["decision"] == "allowed"


async def test_emergency_change_for_the_open_incident_passes_its_freeze(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    incident = incident_of(svc, priority=1)
    freeze = freeze_of([svc], source="incident", incident_id=incident["id"], ends_at=None)
    fix = change_of(svc, "scheduled", type_="emergency", incident_id=incident["id"])
    await stack.incident(incident)
    await stack.freeze(freeze)
    await stack.change(fix)
    await stack.projected(IncidentView, incident["id"])
    await stack.projected(FreezeView, freeze["id"])
    await stack.projected(ChangeView, fix["id"])
    plain = await stack.deploy(svc)
    assert codes(plain["gate"]) == ["freeze_active"]
    dep = await stack.deploy(svc, change_id=str(fix["id"]))
    assert (dep["gate"]["decision"], codes(dep["gate"])) == (
        "allowed", ["emergency_change", "change_covers"])
    assert dep["rework"] is True


@pytest.mark.parametrize("gate_mode", ["off"], indirect=True)
async def test_gate_off_allows_despite_a_major_incident(stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    incident = incident_of(svc, priority=1)
    await stack.incident(incident)
    await stack.projected(IncidentView, incident["id"])
    dep = await stack.deploy(svc)
    assert (dep["gate"]["decision"], codes(dep["gate"]), dep["gate"]["mode"]) == (
        "allowed", ["gate_off"], "off")


async def test_incident_naming_a_deployment_its_cause_counts_it_as_a_failed_change(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc)
    for to in ("in_progress", "succeeded"):
        r = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                    json={"to": to}, headers=stack.headers())
        assert r.status_code == 200
    incident = incident_of(svc, priority=3)
    await stack.incident(incident)
    await stack.incident({**incident, "cause_deployment_id": dep["id"]}, "cause_confirmed",
                         deployment_id=dep["id"], change_id=None, priority=3)

    async def failure_rate() -> Any:
        r = await stack.client.get("/api/v1/dora", params={"service": svc},
                                   headers=stack.headers("viewer"))
        rate = r.json()["metrics"]["change_failure_rate"]
        return rate if rate["value"] == 1.0 else None
    rate = await eventually(failure_rate)
    assert rate == {"value": 1.0, "unit": "ratio", "sample_size": 1, "bucket": "low"}
