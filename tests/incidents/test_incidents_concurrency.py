"""The incident aggregate under concurrent writers, on SQLite and PostgreSQL: of writers holding
one ``If-Match`` exactly one wins, and writers racing without one leave a single history, the
same on the topic and on the timeline, with strictly increasing sequences and no gap."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from incidents_support import Running, deployment_event, unique_service

from tandem.events import CloudEvent
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARALLEL = 8
RESOLVE = {"resolution_code": "solution_provided", "resolution_notes": "fixed"}


def if_match(svc: Running, version: int) -> dict[str, str]:
    return {**svc.headers(), "If-Match": f'"{version}"'}


async def timeline(svc: Running, incident: dict[str, Any]) -> list[dict[str, Any]]:
    r = await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                             headers=svc.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def one_history(svc: Running, incident: dict[str, Any]) -> list[CloudEvent]:
    """The incident's events, once the topic holds as many as its version says: checked to be
    one history (sequences 1..version in topic order, each snapshot at its sequence) and to be
    exactly its timeline."""
    stored = (await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                   headers=svc.headers("viewer"))).json()
    version = stored["version"]
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) >= version)
    assert [e.sequence for e in events] == list(range(1, version + 1))
    assert [e.data["incident"]["version"] for e in events] == list(range(1, version + 1))
    assert events[-1].data["incident"] == stored
    entries = await timeline(svc, incident)
    assert [(i["id"], i["sequence"]) for i in entries] == [(str(e.id), e.sequence)
                                                           for e in events]
    return events


def moves_chain(events: list[CloudEvent]) -> None:
    """Each move starts where the one before it left the incident."""
    status = "new"
    for event in events[1:]:
        if event.type == "tandem.incident.transitioned":
            assert event.data["from"] == status, (event.data["from"], status)
            status = event.data["to"]
        assert event.data["incident"]["status"] == status


async def test_parallel_moves_with_one_if_match_have_exactly_one_winner(svc: Running) -> None:
    incident = await svc.create()
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                        json={"to": "acknowledged", "reason": f"writer {n}"},
                        headers=if_match(svc, incident["version"]))
        for n in range(PARALLEL)))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 412: PARALLEL - 1}, codes
    [won] = [r for r in answers if r.status_code == 200]
    assert won.headers["etag"] == '"2"'
    assert all(r.json()["type"] == "urn:tandem:problem:version-mismatch"
               for r in answers if r.status_code == 412)
    events = await one_history(svc, incident)
    assert [e.type for e in events] == ["tandem.incident.created",
                                        "tandem.incident.transitioned"]
    assert events[1].data["reason"].startswith("writer ")
    assert events[1].data["incident"]["acknowledged_at"] == won.json()["acknowledged_at"]


async def test_parallel_edits_with_one_if_match_have_exactly_one_winner(svc: Running) -> None:
    incident = await svc.create()
    answers = await asyncio.gather(*(
        svc.client.patch(f"/api/v1/incidents/{incident['id']}", json={"assignee": f"ana-{n}"},
                         headers=if_match(svc, incident["version"]))
        for n in range(PARALLEL)))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 412: PARALLEL - 1}, codes
    [won] = [r.json() for r in answers if r.status_code == 200]
    events = await one_history(svc, incident)
    assert [e.type for e in events] == ["tandem.incident.created", "tandem.incident.updated"]
    assert events[1].data["changes"] == {"assignee": [None, won["assignee"]]}


async def test_parallel_causes_with_one_if_match_have_exactly_one_winner(svc: Running) -> None:
    incident = await svc.create()
    causes = [str(uuid.uuid4()) for _ in range(PARALLEL)]
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/incidents/{incident['id']}/cause",
                        json={"change_id": change_id},
                        headers={**svc.headers("manager"), "If-Match": '"1"'})
        for change_id in causes))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 412: PARALLEL - 1}, codes
    [won] = [r.json() for r in answers if r.status_code == 200]
    events = await one_history(svc, incident)
    assert events[1].type == "tandem.incident.cause_confirmed"
    assert events[1].data["change_id"] == won["cause_change_id"]


async def test_parallel_different_moves_leave_one_history(svc: Running) -> None:
    """Acknowledge, start and resolve race without If-Match: each writer sees what the one
    before it left, so every move it makes is legal from there (or a 409), and the topic and
    the timeline tell one story."""
    incident = await svc.create()
    moves = [{"to": "acknowledged"}, {"to": "in_progress"}, {"to": "resolved", **RESOLVE}] * 3
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/incidents/{incident['id']}/transitions", json=move,
                        headers=svc.headers()) for move in moves))
    assert set(Counter(r.status_code for r in answers)) <= {200, 409}, [r.text for r in answers]
    won = sum(r.status_code == 200 for r in answers)
    assert won >= 1
    events = await one_history(svc, incident)
    assert len(events) == 1 + won
    moves_chain(events)


async def test_parallel_notes_leave_one_history(svc: Running) -> None:
    incident = await svc.create()
    texts = [f"observation {n}" for n in range(PARALLEL)]
    answers = await asyncio.gather(*(
        svc.client.post(f"/api/v1/incidents/{incident['id']}/notes", json={"text": text},
                        headers=svc.headers()) for text in texts))
    assert [r.status_code for r in answers] == [201] * PARALLEL, [r.text for r in answers]
    events = await one_history(svc, incident)
    assert len(events) == 1 + PARALLEL
    assert sorted(e.data["note"]["text"] for e in events[1:]) == sorted(texts)
    listed = (await svc.client.get(f"/api/v1/incidents/{incident['id']}/notes",
                                   headers=svc.headers("viewer"))).json()["items"]
    assert [n["text"] for n in listed] == [e.data["note"]["text"] for e in events[1:]]


async def test_notes_moves_and_edits_racing_leave_one_history(svc: Running) -> None:
    incident = await svc.create()
    url = f"/api/v1/incidents/{incident['id']}"
    writes: list[Any] = []
    for n in range(PARALLEL // 2):
        writes.append(svc.client.post(f"{url}/notes", json={"text": f"note {n}"},
                                      headers=svc.headers()))
        writes.append(svc.client.patch(url, json={"assignee": f"ana-{n}"},
                                       headers=svc.headers()))
    writes += [svc.client.post(f"{url}/transitions", json=move, headers=svc.headers())
               for move in ({"to": "acknowledged"}, {"to": "in_progress"})]
    answers: list[httpx.Response] = await asyncio.gather(*writes)
    assert set(Counter(r.status_code for r in answers)) <= {200, 201, 409}
    events = await one_history(svc, incident)
    assert len(events) == 1 + sum(r.status_code in (200, 201) for r in answers)
    moves_chain(events)


async def test_a_reaction_racing_the_api_leaves_one_history(svc: Running) -> None:
    """The consumer writes under the same lock as the routes: an S2 annotation landing among
    notes and moves takes the next version, never a taken one."""
    service = unique_service()
    d = {"id": str(uuid.uuid4()), "number": "DEP0000042", "service": service,
         "environment": "production", "version": 2, "software_version": "2.0.1",
         "change_id": None, "status": "failed",
         "started_at": datetime.now(UTC).isoformat(), "finished_at": None}
    await svc.publish("deployments", deployment_event(
        "tandem.deployment.transitioned", sequence=2, deployment=d,
        **{"from": "in_progress", "to": "failed", "reason": ""}))

    async def opened() -> list[dict[str, Any]]:
        r = await svc.client.get("/api/v1/incidents", params={"service": service},
                                 headers=svc.headers("viewer"))
        return r.json()["items"]  # type: ignore[no-any-return]

    [incident] = await eventually(opened)  # type: ignore[misc]
    url = f"/api/v1/incidents/{incident['id']}"
    rolled_back = deployment_event(
        "tandem.deployment.transitioned", sequence=3,
        deployment={**d, "status": "rolled_back", "version": 3},
        **{"from": "failed", "to": "rolled_back", "reason": "reverted"})
    answers = await asyncio.gather(
        svc.publish("deployments", rolled_back),
        *(svc.client.post(f"{url}/notes", json={"text": f"note {n}"}, headers=svc.headers())
          for n in range(PARALLEL)),
        svc.client.post(f"{url}/transitions", json={"to": "in_progress"},
                        headers=svc.headers()))
    assert [r.status_code for r in answers[1:]] == [201] * PARALLEL + [200]

    async def annotated() -> bool:
        return any(e["type"] == "tandem.incident.annotated"
                   and e["data"]["note"]["kind"] == "deployment"
                   for e in await timeline(svc, incident))

    await eventually(annotated)
    events = await one_history(svc, incident)
    kinds = Counter(e.data["note"]["kind"] for e in events
                    if e.type == "tandem.incident.annotated")
    assert kinds == {"note": PARALLEL, "deployment": 1}
    moves_chain(events)
