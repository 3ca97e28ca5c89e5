"""The incident API over HTTP, with its events on the real broker, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from incidents_support import Running, unique_service

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The incident fields other services read from every snapshot (docs/architecture.md).
CROSS_SERVICE_FIELDS = {"id", "number", "title", "service", "environment", "priority", "major",
                        "status", "cause_deployment_id", "cause_change_id", "reported_at",
                        "acknowledged_at", "resolved_at", "closed_at"}


async def test_create_derives_priority_and_sla_and_publishes_the_snapshot(svc: Running) -> None:
    r = await svc.client.post("/api/v1/incidents", headers=svc.headers(), json={
        "title": "Payments failing", "service": unique_service(), "environment": "production",
        "impact": 1, "urgency": 2, "assignment_group": "payments-oncall"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["priority"] == 2 and body["major"] is True and body["priority_overridden"] is False
    assert body["status"] == "new" and body["version"] == 1
    assert body["number"].startswith("INC") and len(body["number"]) == 10
    assert r.headers["location"] == f"/api/v1/incidents/{body['id']}"
    assert r.headers["etag"] == '"1"'
    reported = datetime.fromisoformat(body["reported_at"])
    assert datetime.fromisoformat(body["response_due_at"]) - reported == timedelta(minutes=30)
    assert datetime.fromisoformat(body["resolution_due_at"]) - reported == timedelta(hours=8)
    assert body["allowed_transitions"] == ["acknowledged", "canceled", "in_progress", "resolved"]

    by_number = await svc.client.get(f"/api/v1/incidents/{body['number'].lower()}",
                                     headers=svc.headers("viewer"))
    assert by_number.status_code == 200 and by_number.json() == body

    events = await svc.events_about(body["id"])
    assert [e.type for e in events] == ["tandem.incident.created"]
    assert events[0].sequence == 1 and events[0].actor == "practitioner-user"
    assert events[0].data["incident"] == body
    assert CROSS_SERVICE_FIELDS <= set(events[0].data["incident"])


async def test_create_replays_for_a_retry_with_the_same_idempotency_key(svc: Running) -> None:
    body = {"title": "Login slow", "service": unique_service(), "environment": "staging",
            "impact": 3, "urgency": 2}
    headers = {**svc.headers(), "Idempotency-Key": "retry-" + body["service"]}
    first = await svc.client.post("/api/v1/incidents", json=body, headers=headers)
    again = await svc.client.post("/api/v1/incidents", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    other = await svc.client.post("/api/v1/incidents", json={**body, "impact": 1}, headers=headers)
    assert other.status_code == 422
    listed = await svc.client.get("/api/v1/incidents", params={"service": body["service"]},
                                  headers=svc.headers("viewer"))
    assert len(listed.json()["items"]) == 1


@pytest.mark.parametrize(("field", "value"), [
    ("environment", "prod"), ("impact", 4), ("urgency", 0), ("title", "x" * 201),
    ("title", ""), ("service", "Bad Service!"), ("description", "d" * 10001),
    ("assignee", "a" * 256), ("colour", "red"),
])
async def test_bad_input_is_a_clear_problem(svc: Running, field: str, value: object) -> None:
    body = {"title": "t", "service": "api", "environment": "production", "impact": 1,
            "urgency": 1, field: value}
    r = await svc.client.post("/api/v1/incidents", json=body, headers=svc.headers())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422 and field in problem["detail"]
    assert any(e["field"] == field for e in problem["errors"])


async def test_malformed_bodies_and_refs_never_give_a_500(svc: Running) -> None:
    h = svc.headers()
    bad_json = await svc.client.post("/api/v1/incidents", content=b"{not json",
                                     headers={**h, "content-type": "application/json"})
    assert bad_json.status_code == 422
    as_list = await svc.client.post("/api/v1/incidents", json=[1, 2], headers=h)
    assert as_list.status_code == 422
    missing = await svc.client.get("/api/v1/incidents/INC9999999", headers=h)
    assert missing.status_code == 404
    bad_filter = await svc.client.get("/api/v1/incidents?status=open&priority=9", headers=h)
    assert bad_filter.status_code == 422
    bad_cursor = await svc.client.get("/api/v1/incidents?cursor=zzz", headers=h)
    assert bad_cursor.status_code == 400
    # NUL characters, which PostgreSQL cannot store, are refused wherever they come in.
    nul = await svc.client.post("/api/v1/incidents", headers=h, json={
        "title": "a\x00b", "service": "api", "environment": "production", "impact": 1,
        "urgency": 1})
    assert nul.status_code == 422
    # NUL in a path is a 422 naming it, before any route (no service can store it).
    nul_path = await svc.client.get("/api/v1/incidents/INC%00", headers=h)
    assert nul_path.status_code == 422
    assert nul_path.json()["errors"][0]["field"] == "path"
    assert (await svc.client.get("/api/v1/incidents?assignee=%00", headers=h)).status_code == 422
    incident = await svc.create()
    note = await svc.client.post(f"/api/v1/incidents/{incident['id']}/notes",
                                 json={"text": "\x00"}, headers=h)
    assert note.status_code == 422
    huge = await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline?cursor="
                                f"{10**19}", headers=h)
    assert huge.status_code == 400


async def test_roles_guard_reading_and_working(svc: Running) -> None:
    body = {"title": "t", "service": "api", "environment": "production", "impact": 1,
            "urgency": 1}
    assert (await svc.client.post("/api/v1/incidents", json=body)).status_code == 401
    viewer = await svc.client.post("/api/v1/incidents", json=body, headers=svc.headers("viewer"))
    assert viewer.status_code == 403
    forged = {"Authorization": "Bearer not-a-token"}
    assert (await svc.client.get("/api/v1/incidents", headers=forged)).status_code == 401


async def test_full_lifecycle_sets_facts_and_timestamps(svc: Running) -> None:
    incident = await svc.create()
    acked = await svc.move(incident, "acknowledged", reason="on it")
    assert acked.status_code == 200 and acked.json()["acknowledged_at"] is not None
    assert (await svc.move(incident, "in_progress")).status_code == 200

    no_reason = await svc.move(incident, "on_hold")
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == \
        "on_hold_reason"
    bad_reason = await svc.move(incident, "on_hold", on_hold_reason="awaiting_lunch")
    assert bad_reason.status_code == 422
    held = await svc.move(incident, "on_hold", on_hold_reason="awaiting_vendor")
    assert held.json()["on_hold_reason"] == "awaiting_vendor"
    illegal = await svc.move(incident, "resolved", resolution_code="solution_provided",
                             resolution_notes="x")
    assert illegal.status_code == 409 and illegal.json()["allowed"] == ["canceled", "in_progress"]
    back = await svc.move(incident, "in_progress")
    assert back.json()["on_hold_reason"] is None

    no_code = await svc.move(incident, "resolved", resolution_notes="restarted the pool")
    assert no_code.status_code == 422
    resolved = (await svc.move(incident, "resolved", resolution_code="solution_provided",
                               resolution_notes="restarted the pool")).json()
    assert resolved["resolved_at"] is not None and resolved["mitigated_at"] is not None
    assert resolved["resolution_code"] == "solution_provided"
    reopened = (await svc.move(incident, "in_progress", reason="came back")).json()
    assert reopened["reopen_count"] == 1 and reopened["resolved_at"] is None
    await svc.move(incident, "resolved", resolution_code="rolled_back", resolution_notes="v2")
    closed = await svc.move(incident, "closed")
    assert closed.status_code == 200 and closed.json()["closed_at"] is not None
    assert closed.json()["allowed_transitions"] == []
    final = await svc.move(incident, "in_progress")
    assert final.status_code == 409 and final.json()["allowed"] == []
    unknown = await svc.move(incident, "sleeping")
    assert unknown.status_code == 422

    moves = ["acknowledged", "in_progress", "on_hold", "in_progress", "resolved", "in_progress",
             "resolved", "closed"]
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) == 9)
    assert [e.sequence for e in events] == list(range(1, 10))
    assert [e.data["to"] for e in events[1:]] == moves
    assert events[1].data["from"] == "new" and events[1].data["reason"] == "on it"
    assert events[-1].data["incident"]["status"] == "closed"

    timeline = await svc.client.get(f"/api/v1/incidents/{incident['number']}/timeline",
                                    headers=svc.headers("viewer"))
    assert [i["id"] for i in timeline.json()["items"]] == [str(e.id) for e in events]
    page = await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline?limit=4",
                                headers=svc.headers("viewer"))
    rest = await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline?limit=10&cursor="
                                f"{page.json()['next_cursor']}", headers=svc.headers("viewer"))
    assert [i["sequence"] for i in page.json()["items"] + rest.json()["items"]] == \
        list(range(1, 10))
    assert rest.json()["next_cursor"] is None


async def test_cancel_from_any_open_state_and_new_straight_to_resolved(svc: Running) -> None:
    quick = await svc.create()
    r = await svc.move(quick, "resolved", resolution_code="resolved_by_caller",
                       resolution_notes="user fixed it")
    assert r.status_code == 200 and r.json()["acknowledged_at"] is None
    dropped = await svc.create()
    r = await svc.move(dropped, "canceled", reason="duplicate of another")
    assert r.status_code == 200 and r.json()["status"] == "canceled"


async def test_if_match_guards_moves_and_edits(svc: Running) -> None:
    incident = await svc.create()
    stale = await svc.client.post(f"/api/v1/incidents/{incident['id']}/transitions",
                                  json={"to": "acknowledged"},
                                  headers={**svc.headers(), "If-Match": '"7"'})
    assert stale.status_code == 412
    fresh = await svc.client.patch(f"/api/v1/incidents/{incident['id']}",
                                   json={"assignee": "ana"},
                                   headers={**svc.headers(), "If-Match": '"1"'})
    assert fresh.status_code == 200 and fresh.headers["etag"] == '"2"'


async def test_edits_priority_override_and_major_declaration(svc: Running) -> None:
    incident = await svc.create(impact=3, urgency=2)
    assert incident["priority"] == 4 and incident["major"] is False
    url = f"/api/v1/incidents/{incident['id']}"
    forbidden = await svc.client.patch(url, json={"priority": 1}, headers=svc.headers())
    assert forbidden.status_code == 403

    edited = await svc.client.patch(url, json={"impact": 2, "assignee": "ana",
                                               "assignment_group": "sre"}, headers=svc.headers())
    assert edited.json()["priority"] == 3 and edited.json()["assignee"] == "ana"
    overridden = (await svc.client.patch(url, json={"priority": 1},
                                         headers=svc.headers("manager"))).json()
    assert overridden["priority"] == 1 and overridden["priority_overridden"] is True
    assert overridden["major"] is True
    assert overridden["response_due_at"] != edited.json()["response_due_at"]
    still = (await svc.client.patch(url, json={"urgency": 3}, headers=svc.headers())).json()
    assert still["priority"] == 1
    derived = (await svc.client.patch(url, json={"priority": None},
                                      headers=svc.headers("manager"))).json()
    assert derived["priority"] == 4 and derived["major"] is False
    declared = (await svc.client.patch(url, json={"major": True},
                                       headers=svc.headers("manager"))).json()
    assert declared["major"] is True and declared["major_declared"] is True
    unchanged = await svc.client.patch(url, json={"assignee": "ana"}, headers=svc.headers())
    assert unchanged.json()["version"] == declared["version"]
    null_title = await svc.client.patch(url, json={"title": None}, headers=svc.headers())
    assert null_title.status_code == 422
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    bad_mitigation = await svc.client.patch(url, json={"mitigated_at": future},
                                            headers=svc.headers())
    assert bad_mitigation.status_code == 422

    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) == 6)
    updates = [e for e in events if e.type == "tandem.incident.updated"]
    assert updates[0].data["changes"]["assignee"] == [None, "ana"]
    assert updates[0].data["changes"]["priority"] == [4, 3]
    assert updates[1].data["changes"]["priority_overridden"] == [False, True]

    await svc.move(incident, "canceled")
    closed_edit = await svc.client.patch(url, json={"title": "new"}, headers=svc.headers())
    assert closed_edit.status_code == 409


async def test_notes_are_events_on_the_timeline(svc: Running) -> None:
    incident = await svc.create()
    r = await svc.client.post(f"/api/v1/incidents/{incident['id']}/notes",
                              json={"text": "Customer reports 502s from EU"},
                              headers=svc.headers(sub="ana"))
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["author"] == "ana" and note["kind"] == "note"
    got = await svc.client.get(r.headers["location"], headers=svc.headers("viewer"))
    assert got.json() == note
    empty = await svc.client.post(f"/api/v1/incidents/{incident['id']}/notes",
                                  json={"text": ""}, headers=svc.headers())
    assert empty.status_code == 422
    events = await svc.events_about(incident["id"], until=lambda evs: len(evs) == 2)
    assert events[1].type == "tandem.incident.annotated"
    assert events[1].data["note"]["text"] == "Customer reports 502s from EU"
    assert events[1].data["incident"]["version"] == 2
    timeline = (await svc.client.get(f"/api/v1/incidents/{incident['id']}/timeline",
                                     headers=svc.headers("viewer"))).json()
    assert [i["type"] for i in timeline["items"]] == ["tandem.incident.created",
                                                      "tandem.incident.annotated"]


async def test_list_filters_and_pages(svc: Running) -> None:
    service = unique_service()
    for impact, urgency in [(1, 1), (2, 2), (3, 3)]:
        await svc.create(service=service, impact=impact, urgency=urgency)
    h = svc.headers("viewer")
    everything = (await svc.client.get("/api/v1/incidents", params={"service": service},
                                       headers=h)).json()
    assert sorted(i["priority"] for i in everything["items"]) == [1, 3, 5]
    majors = (await svc.client.get("/api/v1/incidents",
                                   params={"service": service, "major": "true"},
                                   headers=h)).json()
    assert [i["priority"] for i in majors["items"]] == [1]
    p3 = (await svc.client.get("/api/v1/incidents", params={"service": service, "priority": 3},
                               headers=h)).json()
    assert len(p3["items"]) == 1
    first = (await svc.client.get("/api/v1/incidents", params={"service": service, "limit": 2},
                                  headers=h)).json()
    second = (await svc.client.get("/api/v1/incidents", params={
        "service": service, "limit": 2, "cursor": first["next_cursor"]}, headers=h)).json()
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert len(set(ids)) == 3 and second["next_cursor"] is None


async def test_metrics_report_mtta_and_mttr(svc: Running) -> None:
    service = unique_service()
    acked = await svc.create(service=service)
    await svc.move(acked, "acknowledged")
    await svc.move(acked, "resolved", resolution_code="solution_provided", resolution_notes="ok")
    never_acked = await svc.create(service=service)
    await svc.move(never_acked, "resolved", resolution_code="duplicate", resolution_notes="dup")
    await svc.create(service=service)
    await svc.create(service=service, environment="staging")
    h = svc.headers("viewer")
    r = await svc.client.get("/api/v1/incident-metrics",
                             params={"service": service, "environment": "production"}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mtta"]["count"] == 1 and body["mttr"]["count"] == 2
    assert body["mttr"]["mean"] >= 0 and body["mttr"]["p90"] >= body["mttr"]["median"]
    assert body["mttr"]["unit"] == "seconds"
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    none = (await svc.client.get("/api/v1/incident-metrics",
                                 params={"service": service, "since": later}, headers=h)).json()
    assert none["mtta"] == {"count": 0, "mean": None, "median": None, "p90": None,
                            "unit": "seconds"}
    bad = await svc.client.get("/api/v1/incident-metrics", params={"since": "yesterday"},
                               headers=h)
    assert bad.status_code == 422
    naive = await svc.client.get("/api/v1/incident-metrics",
                                 params={"since": "2026-01-01T00:00:00"}, headers=h)
    assert naive.status_code == 422


async def test_openapi_documents_every_endpoint(svc: Running) -> None:
    r = await svc.client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in ("/api/v1/incidents", "/api/v1/incidents/{ref}",
                 "/api/v1/incidents/{ref}/transitions", "/api/v1/incidents/{ref}/notes",
                 "/api/v1/incidents/{ref}/timeline", "/api/v1/incidents/{ref}/suspects",
                 "/api/v1/incidents/{ref}/cause", "/api/v1/incident-metrics",
                 "/api/v1/incident-policy", "/v2/enqueue"):
        assert path in paths, path
    ready = await svc.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
