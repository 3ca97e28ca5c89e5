"""Concurrent writers of one change or one freeze (SQLite and PostgreSQL): of N requests with
one If-Match exactly one wins, and N different writes (routes, approvals, the freeze clock,
reactions to other services' events) leave one history whose sequences strictly increase."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from changes_support import MODEL, ChangesService, unique_service

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Normal changes here need three approvals, so parallel approvals race over several steps.
REQUIRED_APPROVALS = 3
PARALLEL = 8


def window(start_in_minutes: float = -5, hours: float = 1) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=start_in_minutes)
    return {"planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=hours)).isoformat()}


async def create(svc: ChangesService, type_: str, **extra: Any) -> dict[str, Any]:
    body = {"type": type_, "title": "race", "service": unique_service(),
            "environment": "production", **window(), **extra}
    r = await svc.client.post("/api/v1/changes", json=body,
                              headers=svc.auth("practitioner", "pat"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def active_freeze(svc: ChangesService, starts_in: timedelta = timedelta(minutes=-1),
                        ) -> dict[str, Any]:
    now = datetime.now(UTC)
    r = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
        "services": [unique_service()], "starts_at": (now + starts_in).isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "race"})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def current(svc: ChangesService, kind: str, id_: str) -> dict[str, Any]:
    r = await svc.client.get(f"/api/v1/{kind}/{id_}", headers=svc.auth("viewer"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def history(svc: ChangesService, resource: dict[str, Any]) -> list[Any]:
    """Every event about ``resource`` once the topic has as many as its version says."""
    return await svc.events_about(resource["id"],
                                  lambda evs: len(evs) >= resource["version"])


def assert_one_history(events: list[Any], version: int) -> None:
    """One event per version, in order, each move starting where the one before it ended."""
    assert [e.sequence for e in events] == list(range(1, version + 1))
    assert len({e.id for e in events}) == version
    moves = [(e.data["from"], e.data["to"]) for e in events if e.type.endswith(".transitioned")]
    for (_, before), (after, _) in pairwise(moves):
        assert after == before, moves


def codes(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in answers)


def assert_refused_as_illegal(answers: list[httpx.Response]) -> None:
    """Every 409 is the move found illegal from the state a writer before left (never the
    outbox's backstop against a writer that skipped the lock)."""
    refused = {r.json()["type"] for r in answers if r.status_code == 409}
    assert refused <= {"urn:tandem:problem:illegal-transition"}, [r.text for r in answers]


async def test_parallel_transitions_with_one_if_match_have_exactly_one_winner(
        svc: ChangesService) -> None:
    change = await create(svc, "standard")
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/changes/{change['id']}/transitions", json={"to": "scheduled"},
                        headers={**svc.auth("practitioner"), "If-Match": '"1"'})
        for _ in range(PARALLEL)))
    assert codes(answers) == {200: 1, 412: PARALLEL - 1}, [r.text for r in answers]
    stored = await current(svc, "changes", change["id"])
    assert stored["status"] == "scheduled" and stored["version"] == 2
    events = await history(svc, stored)
    assert_one_history(events, 2)
    assert events[1].data["to"] == "scheduled"


async def test_parallel_different_moves_leave_one_history(svc: ChangesService) -> None:
    """Each writer sees the state the one before it left, so every move it makes is legal from
    there; the rest find no legal move (409)."""
    change = await create(svc, "standard")
    targets = ["scheduled", "implement", "review", "closed", "canceled"] * 2
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                        json={"to": to, "close_code": "successful"},
                        headers=svc.auth("practitioner"))
        for to in targets))
    assert set(codes(answers)) <= {200, 409}, [r.text for r in answers]
    assert_refused_as_illegal(answers)
    stored = await current(svc, "changes", change["id"])
    assert stored["version"] == 1 + codes(answers)[200]
    events = await history(svc, stored)
    assert_one_history(events, stored["version"])
    moves = [(e.data["from"], e.data["to"]) for e in events[1:]]
    assert moves[0][0] == "new" and moves[-1][1] == stored["status"]
    assert all(move in MODEL["standard"] for move in moves), moves


async def test_parallel_approvals_by_different_managers_leave_one_history(
        svc: ChangesService) -> None:
    """Three approvals complete the count and schedule the change; the managers who come after
    find it no longer approvable. Every decision and move is one step of one history."""
    change = await create(svc, "normal")
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "assess"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                        json={"decision": "approve"}, headers=svc.auth("manager", f"m{n}"))
        for n in range(PARALLEL)))
    assert codes(answers) == {201: REQUIRED_APPROVALS, 409: PARALLEL - REQUIRED_APPROVALS}
    refused = [r.json() for r in answers if r.status_code == 409]
    assert {p["type"] for p in refused} == {"urn:tandem:problem:not-approvable"}
    stored = await current(svc, "changes", change["id"])
    assert stored["status"] == "scheduled"
    assert stored["approvals_received"] == REQUIRED_APPROVALS
    approvers = [a["approver"] for a in stored["approvals"]]
    assert len(set(approvers)) == REQUIRED_APPROVALS
    events = await history(svc, stored)
    assert_one_history(events, 7)
    assert [e.type.rsplit(".", 1)[1] for e in events] == [
        "created", "transitioned", "approval_recorded", "approval_recorded",
        "approval_recorded", "transitioned", "transitioned"]
    assert [e.data["approvals_received"] for e in events[2:5]] == [1, 2, 3]
    assert [e.data["to"] for e in events[5:]] == ["authorize", "scheduled"]


async def test_one_manager_deciding_in_parallel_is_recorded_once(svc: ChangesService) -> None:
    change = await create(svc, "normal")
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "assess"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                        json={"decision": "approve"}, headers=svc.auth("manager", "mia"))
        for _ in range(PARALLEL)))
    assert codes(answers) == {201: 1, 409: PARALLEL - 1}
    assert {r.json()["type"] for r in answers if r.status_code == 409} == {
        "urn:tandem:problem:already-decided"}
    stored = await current(svc, "changes", change["id"])
    assert stored["version"] == 3 and stored["approvals_received"] == 1
    assert_one_history(await history(svc, stored), 3)


async def test_parallel_early_ends_with_one_if_match_have_exactly_one_winner(
        svc: ChangesService) -> None:
    freeze = await active_freeze(svc)
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/freezes/{freeze['id']}/transitions", json={"to": "ended"},
                        headers={**svc.auth("manager"), "If-Match": '"1"'})
        for _ in range(PARALLEL)))
    assert codes(answers) == {200: 1, 412: PARALLEL - 1}, [r.text for r in answers]
    stored = await current(svc, "freezes", freeze["id"])
    assert stored["status"] == "ended" and stored["version"] == 2
    events = await history(svc, stored)
    assert_one_history(events, 2)
    assert (events[1].data["from"], events[1].data["to"]) == ("active", "ended")


async def test_parallel_early_ends_and_the_freeze_clock_leave_one_history(
        svc: ChangesService) -> None:
    """A freeze about to start is ended by several managers while the clock may activate it:
    one end wins, the others find it ended (409), and the clock's move, if it came first, is a
    step of the same history."""
    freeze = await active_freeze(svc, starts_in=timedelta(milliseconds=500))
    await asyncio.sleep(0.5)
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/freezes/{freeze['id']}/transitions", json={"to": "ended"},
                        headers=svc.auth("manager")) for _ in range(PARALLEL)))
    assert codes(answers) == {200: 1, 409: PARALLEL - 1}, [r.text for r in answers]
    assert_refused_as_illegal(answers)
    stored = await current(svc, "freezes", freeze["id"])
    assert stored["status"] == "ended"
    events = await history(svc, stored)
    assert_one_history(events, stored["version"])
    assert [e.data["to"] for e in events[1:]] in (["ended"], ["active", "ended"])


async def test_a_deployment_reaction_and_routes_moving_one_change_leave_one_history(
        svc: ChangesService) -> None:
    """S5 (the consumer) and practitioners (routes) move the same change at once: it is
    implemented exactly once, then the deployment's success reviews it."""
    change = await create(svc, "standard", **window(start_in_minutes=-5))
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "scheduled"}, headers=svc.auth("practitioner"))
    assert r.status_code == 200, r.text
    deployment = {"id": str(uuid.uuid4()), "number": "DEP0000042",
                  "service": change["service"], "environment": "production",
                  "version": "1.0.0", "commits": [], "change_id": change["id"],
                  "status": "in_progress", "gate": None, "started_at": None,
                  "finished_at": None}
    started = svc.publish("deployments", "tandem.deployment.transitioned", deployment["id"], {
        "deployment": deployment, "from": "requested", "to": "in_progress", "reason": ""},
        actor="ci")
    moves = [svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                             json={"to": "implement"}, headers=svc.auth("practitioner"))
             for _ in range(PARALLEL)]
    _, *answers = await asyncio.gather(started, *moves)
    assert set(codes(answers)) <= {200, 409}, [r.text for r in answers]
    assert_refused_as_illegal(answers)
    assert codes(answers)[200] <= 1
    await svc.publish("deployments", "tandem.deployment.transitioned", deployment["id"], {
        "deployment": {**deployment, "status": "succeeded"}, "from": "in_progress",
        "to": "succeeded", "reason": ""}, actor="ci")

    async def reviewed() -> dict[str, Any] | None:
        got = await current(svc, "changes", change["id"])
        return got if got["status"] == "review" else None

    stored = await eventually(reviewed)
    assert isinstance(stored, dict)
    events = await history(svc, stored)
    assert_one_history(events, stored["version"])
    assert [e.data["to"] for e in events[2:]] == ["implement", "review"]
    if codes(answers)[200] == 0:
        assert events[2].actor == "ci"


async def test_an_incident_reaction_and_routes_ending_one_freeze_leave_one_history(
        svc: ChangesService) -> None:
    """S4: the incident's resolution (the consumer) and managers (routes) end its freeze at
    once; it ends exactly once."""
    service = unique_service()
    incident = {"id": str(uuid.uuid4()), "number": "INC0000042", "title": "down",
                "service": service, "environment": "production", "priority": 1,
                "major": True, "status": "new"}
    await svc.publish("incidents", "tandem.incident.created", incident["id"],
                      {"incident": incident})

    async def frozen() -> list[dict[str, Any]]:
        r = await svc.client.get("/api/v1/freezes", headers=svc.auth("viewer"),
                                 params={"source": "incident", "service": service})
        return r.json()["items"]  # type: ignore[no-any-return]

    freeze = (await eventually(frozen))[0]  # type: ignore[index]
    resolved = svc.publish("incidents", "tandem.incident.transitioned", incident["id"], {
        "incident": {**incident, "status": "resolved"}, "from": "new", "to": "resolved",
        "reason": "fixed"}, actor="responder")
    ends = [svc.client.post(f"/api/v1/freezes/{freeze['id']}/transitions", json={"to": "ended"},
                            headers=svc.auth("manager")) for _ in range(PARALLEL)]
    _, *answers = await asyncio.gather(resolved, *ends)
    assert set(codes(answers)) <= {200, 409}, [r.text for r in answers]
    assert_refused_as_illegal(answers)
    assert codes(answers)[200] <= 1

    async def projected() -> bool:
        # Risk sees the incident resolved once the consumer applied the event (with its
        # freeze reaction, in the same transaction).
        r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner"), json={
            "type": "standard", "title": "probe", "service": service,
            "environment": "production", **window()})
        return r.json()["risk"] == "low"

    await eventually(projected)
    stored = await current(svc, "freezes", freeze["id"])
    assert stored["status"] == "ended" and stored["version"] == 2
    events = await history(svc, stored)
    assert_one_history(events, 2)
    assert events[1].actor == ("responder" if codes(answers)[200] == 0 else "manager-user")
