"""The standard change catalog over HTTP (SQLite and PostgreSQL): owners write templates down
and retire them; a pipeline records a standard change only from an active template of its
service (else 403 naming the rule); the gate's receipts are recorded from the service's
template; parallel writers of one template leave one history."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from changes_support import ChangesService, move, unique_service, window

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARALLEL = 8


async def template(svc: ChangesService, service: str, *, minutes: int = 60,
                   title: str = "Restart the workers") -> dict[str, Any]:
    r = await svc.client.post("/api/v1/standard-changes", headers=svc.auth("owner", "olivia"),
                              json={"service": service, "title": title,
                                    "description": "Rolling restart, one node at a time.",
                                    "max_window_minutes": minutes})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def record(svc: ChangesService, body: dict[str, Any], role: str = "pipeline",
                 expect: int = 201) -> dict[str, Any]:
    r = await svc.client.post("/api/v1/changes", json={"type": "standard",
                                                       "environment": "production", **body},
                              headers=svc.auth(role, "ci-bot"))
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_an_owner_writes_a_template_down_and_anyone_reads_it(svc: ChangesService) -> None:
    service = unique_service()
    created = await template(svc, service, minutes=90)
    assert created["number"].startswith("STD") and created["status"] == "active"
    assert (created["approved_by"], created["max_window_minutes"]) == ("olivia", 90)
    assert created["allowed_transitions"] == ["retired"]
    for role in ("manager", "practitioner", "pipeline"):
        r = await svc.client.post("/api/v1/standard-changes", headers=svc.auth(role),
                                  json={"service": service, "title": "x",
                                        "max_window_minutes": 5})
        assert r.status_code == 403, role
    listed = await svc.client.get("/api/v1/standard-changes", params={"service": service},
                                  headers=svc.auth("viewer"))
    assert [t["number"] for t in listed.json()["items"]] == [created["number"]]
    [event] = await svc.events_about(created["id"])
    assert event.type == "tandem.standard_change.created"
    assert event.data["standard_change"]["service"] == service


async def test_a_pipeline_records_a_standard_change_from_its_services_template(
        svc: ChangesService) -> None:
    service = unique_service()
    std = await template(svc, service, minutes=45)
    before = datetime.now(UTC)
    change = await record(svc, {"service": service, "template_id": std["id"]})
    assert (change["template_id"], change["title"]) == (std["id"], "Restart the workers")
    assert change["description"] == "Rolling restart, one node at a time."
    start = datetime.fromisoformat(change["planned_start"])
    end = datetime.fromisoformat(change["planned_end"])
    assert before - timedelta(seconds=5) <= start <= datetime.now(UTC)
    assert end - start == timedelta(minutes=45)
    assert change["approval_rule"]["kind"] == "none"
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": "scheduled"}, headers=svc.auth("pipeline", "ci-bot"))
    assert (r.status_code, r.json()["status"]) == (200, "scheduled")


async def test_a_pipeline_outside_a_template_is_refused_naming_the_rule(
        svc: ChangesService) -> None:
    service, other = unique_service(), unique_service()
    theirs = await template(svc, other)
    retired = await template(svc, service)
    r = await svc.client.post(f"/api/v1/standard-changes/{retired['id']}/transitions",
                              json={"to": "retired", "reason": "replaced"},
                              headers=svc.auth("owner"))
    assert r.status_code == 200 and r.json()["status"] == "retired"
    for body, code in (
            ({"title": "Deploy it"}, "standard-change-template-required"),
            ({"template_id": theirs["id"]}, "standard-change-template-not-usable"),
            ({"template_id": retired["id"]}, "standard-change-template-not-usable")):
        problem = await record(svc, {"service": service, **body}, expect=403)
        assert problem["type"] == f"urn:tandem:problem:{code}"
        assert problem["rule"] == ("a pipeline records a standard change only from an active "
                                   "template of its service")
    unknown = await record(svc, {"service": service, "template_id": str(uuid.uuid4())},
                           expect=422)
    assert unknown["errors"][0]["field"] == "template_id"
    # People still record standard changes as before; only their templates are checked.
    assert (await record(svc, {"service": service, "title": "By hand"},
                         role="practitioner"))["template_id"] is None
    normal = await record(svc, {"service": service, "type": "normal", "title": "x",
                                "template_id": theirs["id"]}, role="practitioner", expect=422)
    assert normal["errors"][0]["field"] == "template_id"


async def test_a_templated_change_keeps_inside_its_longest_window(svc: ChangesService) -> None:
    service = unique_service()
    std = await template(svc, service, minutes=30)
    too_long = await record(svc, {"service": service, "template_id": std["id"],
                                  **window(hours=1)}, expect=422)
    assert too_long["errors"][0]["field"] == "planned_end"
    change = await record(svc, {"service": service, "template_id": std["id"],
                                **window(start_in_minutes=60, hours=0.25)})
    start = datetime.fromisoformat(change["planned_start"])
    r = await svc.client.patch(f"/api/v1/changes/{change['id']}", headers=svc.auth("pipeline"),
                               json={"planned_end": (start + timedelta(hours=2)).isoformat()})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "planned_end"


async def test_a_retired_template_is_read_only(svc: ChangesService) -> None:
    std = await template(svc, unique_service())
    path = f"/api/v1/standard-changes/{std['number']}"
    edited = await svc.client.patch(path, json={"max_window_minutes": 120, "title": None},
                                    headers={**svc.auth("owner"), "If-Match": '"1"'})
    assert (edited.status_code, edited.json()["max_window_minutes"]) == (200, 120)
    assert edited.json()["title"] == std["title"]
    retired = await svc.client.post(f"{path}/transitions", json={"to": "retired"},
                                    headers=svc.auth("owner"))
    assert retired.json()["status"] == "retired"
    again = await svc.client.post(f"{path}/transitions", json={"to": "retired"},
                                  headers=svc.auth("owner"))
    assert again.status_code == 409 and again.json()["allowed"] == []
    frozen = await svc.client.patch(path, json={"title": "new"}, headers=svc.auth("owner"))
    assert frozen.status_code == 409
    events = await svc.events_about(std["id"], lambda evs: len(evs) >= 3)
    assert [e.type for e in events] == ["tandem.standard_change.created",
                                        "tandem.standard_change.updated",
                                        "tandem.standard_change.transitioned"]
    assert events[1].data["changes"] == {"max_window_minutes": [60, 120]}


async def test_parallel_edits_of_a_template_with_one_if_match_have_one_winner(
        svc: ChangesService) -> None:
    std = await template(svc, unique_service())
    answers = await asyncio.gather(*(svc.client.patch(
        f"/api/v1/standard-changes/{std['id']}", json={"max_window_minutes": 61 + i},
        headers={**svc.auth("owner"), "If-Match": '"1"'}) for i in range(PARALLEL)))
    codes = Counter(r.status_code for r in answers)
    assert (codes[200], codes[412]) == (1, PARALLEL - 1), codes


async def test_parallel_different_writes_of_a_template_leave_one_history(
        svc: ChangesService) -> None:
    std = await template(svc, unique_service())
    writes = [svc.client.patch(f"/api/v1/standard-changes/{std['id']}",
                               json={"max_window_minutes": 61 + i}, headers=svc.auth("owner"))
              for i in range(PARALLEL)]
    writes.append(svc.client.post(f"/api/v1/standard-changes/{std['id']}/transitions",
                                  json={"to": "retired"}, headers=svc.auth("owner")))
    answers = await asyncio.gather(*writes)
    assert set(Counter(r.status_code for r in answers)) <= {200, 409}
    stored = (await svc.client.get(f"/api/v1/standard-changes/{std['id']}",
                                   headers=svc.auth("viewer"))).json()
    assert stored["status"] == "retired"
    events = await svc.events_about(std["id"], lambda evs: len(evs) >= stored["version"])
    assert [e.sequence for e in events] == list(range(1, stored["version"] + 1))
    assert events[-1].type == "tandem.standard_change.transitioned"


def _deployment(service: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "number": "DEP0000042", "service": service,
            "environment": "production", "status": "requested", "change_id": None,
            "gate": {"decision": "allowed", "reasons": [], "change_id": None,
                     "mode": "receipt"}}


async def _receipt(svc: ChangesService, service: str) -> dict[str, Any]:
    dep = _deployment(service)
    now = datetime.now(UTC)
    await svc.publish("deployments", "tandem.deployment.gate_decided", dep["id"], {
        "deployment": dep, "gate": dep["gate"], "change_request": {
            "type": "standard", "title": f"Deploy {service} 2.0", "description": "receipt",
            "service": service, "environment": "production", "planned_start": now.isoformat(),
            "planned_end": (now + timedelta(hours=1)).isoformat()}}, actor="ci-bot")

    async def recorded() -> Any:
        r = await svc.client.get("/api/v1/changes", params={"deployment_id": dep["id"]},
                                 headers=svc.auth("viewer"))
        items = r.json()["items"]
        return items[0] if items and items[0]["status"] == "scheduled" else None

    return await eventually(recorded)  # type: ignore[no-any-return]


async def test_the_gates_receipt_is_recorded_from_the_services_template(
        svc: ChangesService) -> None:
    service = unique_service()
    std = await template(svc, service, minutes=20)
    receipt = await _receipt(svc, service)
    assert receipt["template_id"] == std["id"]
    assert f"Recorded from standard change template {std['number']}" in receipt["description"]
    window_of = (datetime.fromisoformat(receipt["planned_end"])
                 - datetime.fromisoformat(receipt["planned_start"]))
    assert window_of == timedelta(minutes=20)
    untemplated = await _receipt(svc, unique_service())
    assert untemplated["template_id"] is None
    assert (await move(svc, untemplated, "implement"))["status"] == "implement"
