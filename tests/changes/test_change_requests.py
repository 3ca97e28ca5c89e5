"""Change requests over HTTP: types and their paths, approvals, conflicts, freezes, edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from changes_support import (
    MODEL,
    ChangesService,
    approve,
    create,
    move,
    unique_service,
    window,
)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: This module's service needs two approvals per normal change (the setting is honoured).
REQUIRED_APPROVALS = 2


async def test_created_change_has_a_number_risk_and_is_published(svc: ChangesService) -> None:
    service = unique_service()
    r = await svc.client.post("/api/v1/changes", headers=svc.auth("practitioner", "pat"), json={
        "type": "normal", "title": "Upgrade database", "service": service,
        "environment": "production", **window()})
    assert r.status_code == 201, r.text
    change = r.json()
    assert change["number"].startswith("CHG") and len(change["number"]) == 10
    assert r.headers["location"] == f"/api/v1/changes/{change['id']}"
    assert r.headers["etag"] == '"1"'
    assert change["status"] == "new"
    assert change["allowed_transitions"] == ["assess", "canceled"]
    assert change["risk"] == "moderate" and change["risk_rule"] == "normal change in production"
    assert change["requested_by"] == "pat"
    by_number = await svc.client.get(f"/api/v1/changes/{change['number']}",
                                     headers=svc.auth("viewer"))
    assert by_number.json()["id"] == change["id"]
    events = await svc.events_about(change["id"])
    assert [e.type for e in events] == ["tandem.change.created"]
    snapshot = events[0].data["change"]
    for name in ("id", "number", "type", "service", "environment", "status", "planned_start",
                 "planned_end", "incident_id", "deployment_id", "close_code"):
        assert name in snapshot
    assert events[0].sequence == 1 and events[0].actor == "pat"


async def test_bad_windows_and_fields_are_clear_problems(svc: ChangesService) -> None:
    service = unique_service()
    start = datetime.now(UTC) + timedelta(hours=1)
    base = {"type": "normal", "title": "x", "service": service, "environment": "production"}
    cases = [
        ({"planned_start": start.isoformat(),
          "planned_end": (start - timedelta(minutes=1)).isoformat()}, "planned_end"),
        ({"planned_start": start.isoformat(),
          "planned_end": (start + timedelta(days=30)).isoformat()}, "planned_end"),
        ({"planned_start": start.isoformat()}, "planned_end"),
        ({"incident_id": "6f1c1b7e-8f7e-4a55-9d1e-1d2b1f2a3b4c", **window()}, "incident_id"),
        ({"type": "urgent"}, "type"),
        ({"planned_start": "2026-01-01T10:00:00", "planned_end": "2026-01-01T11:00:00"},
         "planned_start"),
    ]
    for extra, field in cases:
        r = await svc.client.post("/api/v1/changes", json={**base, **extra},
                                  headers=svc.auth("practitioner"))
        assert r.status_code == 422, (extra, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in r.json()["errors"]], r.json()


async def test_roles_decide_who_may_record_and_approve(svc: ChangesService) -> None:
    service = unique_service()
    body = {"type": "standard", "title": "Rotate certs", "service": service,
            "environment": "production", **window()}
    assert (await svc.client.post("/api/v1/changes", json=body)).status_code == 401
    assert (await svc.client.post("/api/v1/changes", json=body,
                                  headers=svc.auth("viewer"))).status_code == 403
    # A pipeline records a standard change only from an active template of its service.
    r = await svc.client.post("/api/v1/changes", json=body, headers=svc.auth("pipeline"))
    assert (r.status_code, r.json()["type"]) == (
        403, "urn:tandem:problem:standard-change-template-required")
    template = await svc.client.post("/api/v1/standard-changes", headers=svc.auth("owner"),
                                     json={"service": service, "title": "Rotate certs",
                                           "max_window_minutes": 120})
    assert template.status_code == 201, template.text
    assert (await svc.client.post("/api/v1/changes", json={
        **body, "template_id": template.json()["id"]},
        headers=svc.auth("pipeline"))).status_code == 201
    r = await svc.client.post("/api/v1/changes", json={**body, "type": "normal"},
                              headers=svc.auth("pipeline"))
    assert r.status_code == 403
    change = await create(svc, "normal", service)
    await move(svc, change, "assess")
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": "approve"}, headers=svc.auth("practitioner"))
    assert r.status_code == 403


async def test_normal_change_needs_the_configured_approvals_to_be_scheduled(
        svc: ChangesService) -> None:
    service = unique_service()
    change = await create(svc, "normal", service, sub="pat")
    await move(svc, change, "assess")
    await move(svc, change, "authorize")
    problem = await move(svc, change, "scheduled", expect=409)
    assert problem["approvals_required"] == 2 and problem["approvals_received"] == 0
    # The requester cannot approve their own change, even as a manager.
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": "approve"}, headers=svc.auth("manager", "pat"))
    assert r.status_code == 403
    first = await approve(svc, change, "mia")
    assert first["status"] == "authorize" and first["approvals_received"] == 1
    await approve(svc, change, "mia", expect=409)  # one decision per manager
    second = await approve(svc, change, "max")
    assert second["status"] == "scheduled" and second["approvals_received"] == 2
    events = await svc.events_about(change["id"], lambda evs: len(evs) >= 6)
    assert [e.type.rsplit(".", 1)[1] for e in events] == [
        "created", "transitioned", "transitioned", "approval_recorded", "approval_recorded",
        "transitioned"]
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[4].data["approval"]["approver"] == "max"
    assert events[4].data["approvals_received"] == 2
    assert events[5].data["from"] == "authorize" and events[5].data["to"] == "scheduled"
    assert events[5].data["change"]["status"] == "scheduled"
    implemented = await move(svc, second, "implement")
    assert implemented["status"] == "implement"
    await move(svc, change, "review")
    problem = await move(svc, change, "closed", expect=422)
    assert "close_code" in problem["detail"]
    closed = await move(svc, change, "closed", close_code="successful", close_notes="done")
    assert closed["status"] == "closed" and closed["close_code"] == "successful"
    assert closed["allowed_transitions"] == []
    score = (await svc.client.get(f"/api/v1/change-success-scores/{service}",
                                  headers=svc.auth("viewer"))).json()
    assert score["score"] == 3 and score["closed_changes"] == 1


async def test_rejection_and_revert_send_the_change_back_and_cancel_approvals(
        svc: ChangesService) -> None:
    service = unique_service()
    change = await create(svc, "normal", service)
    await move(svc, change, "assess")
    assert (await approve(svc, change, "mia"))["approvals_received"] == 1
    reverted = await move(svc, change, "new", reason="scope changed")
    assert reverted["status"] == "new" and reverted["approvals"] == []
    assert reverted["approvals_received"] == 0
    await move(svc, change, "assess")
    await approve(svc, change, "mia")  # a fresh round: mia may decide again
    rejected = await approve(svc, change, "max", decision="reject")
    assert rejected["status"] == "new" and rejected["approvals_received"] == 0
    events = await svc.events_about(change["id"],
                                    lambda evs: any(e.data.get("to") == "new" and
                                                    "rejected" in e.data["reason"] for e in evs))
    assert events[-1].type == "tandem.change.transitioned"
    assert events[-2].type == "tandem.change.approval_recorded"
    assert events[-2].data["approval"]["decision"] == events[-2].data["decision"] == "reject"


async def test_each_type_follows_its_own_path(svc: ChangesService) -> None:
    service = unique_service()
    standard = await create(svc, "standard", service)
    assert standard["allowed_transitions"] == ["canceled", "scheduled"]
    problem = await move(svc, standard, "assess", expect=409)
    assert problem["allowed"] == ["canceled", "scheduled"]
    await move(svc, standard, "scheduled")
    await move(svc, standard, "implement")
    await move(svc, standard, "review")
    assert (await move(svc, standard, "canceled", expect=409))["allowed"] == ["closed"]

    emergency = await create(svc, "emergency", unique_service(),
                             incident_id="6f1c1b7e-8f7e-4a55-9d1e-1d2b1f2a3b4c")
    assert emergency["incident_id"] == "6f1c1b7e-8f7e-4a55-9d1e-1d2b1f2a3b4c"
    assert emergency["risk"] == "high"
    assert (await move(svc, emergency, "assess", expect=409))["allowed"] == [
        "authorize", "canceled"]
    await move(svc, emergency, "authorize")
    assert (await approve(svc, emergency, "mia"))["status"] == "scheduled"

    unknown = await move(svc, standard, "done", expect=422)
    assert "not a standard change state" in unknown["detail"]
    canceled = await move(svc, await create(svc, "normal", service), "canceled")
    assert canceled["allowed_transitions"] == []


async def test_conflicting_window_needs_a_managers_force(svc: ChangesService) -> None:
    service = unique_service()
    first = await create(svc, "standard", service)
    await move(svc, first, "scheduled")
    second = await create(svc, "standard", service, **window(start_in_minutes=40))
    conflicts = (await svc.client.get(f"/api/v1/changes/{second['number']}/conflicts",
                                      headers=svc.auth("viewer"))).json()
    assert [(c["kind"], c["number"]) for c in conflicts["items"]] == [("change", first["number"])]
    problem = await move(svc, second, "scheduled", expect=409)
    assert problem["type"] == "urn:tandem:problem:schedule-conflict"
    await move(svc, second, "scheduled", force=True, expect=403)
    forced = await move(svc, second, "scheduled", role="manager", force=True)
    assert forced["status"] == "scheduled" and forced["forced"] is True
    assert forced["forced_by"] == "pat"
    events = await svc.events_about(second["id"], lambda evs: len(evs) >= 2)
    assert events[-1].data["forced"] is True
    assert events[-1].data["conflicts"][0]["number"] == first["number"]
    # Another environment or a later window is no conflict.
    later = await create(svc, "standard", service, **window(start_in_minutes=300))
    assert (await move(svc, later, "scheduled"))["forced"] is False


async def test_freeze_blocks_implementation_of_non_emergency_changes(svc: ChangesService) -> None:
    service = unique_service()
    change = await create(svc, "standard", service, **window(start_in_minutes=-5))
    await move(svc, change, "scheduled")
    now = datetime.now(UTC)
    freeze_body = {"services": [service], "starts_at": (now - timedelta(minutes=1)).isoformat(),
                   "ends_at": (now + timedelta(hours=2)).isoformat(), "reason": "peak sales"}
    assert (await svc.client.post("/api/v1/freezes", json=freeze_body,
                                  headers=svc.auth("practitioner"))).status_code == 403
    r = await svc.client.post("/api/v1/freezes", json=freeze_body, headers=svc.auth("manager"))
    assert r.status_code == 201, r.text
    freeze = r.json()
    assert freeze["number"].startswith("FRZ") and freeze["status"] == "active"
    assert freeze["source"] == "manual" and freeze["services"] == [service]
    problem = await move(svc, change, "implement", expect=409)
    assert problem["type"] == "urn:tandem:problem:frozen"
    # A freeze is a conflict for windows it touches.
    other = await create(svc, "standard", service, **window(start_in_minutes=90))
    conflicts = (await svc.client.get(f"/api/v1/changes/{other['id']}/conflicts",
                                      headers=svc.auth("viewer"))).json()["items"]
    assert [(c["kind"], c["number"]) for c in conflicts] == [("freeze", freeze["number"])]
    # An emergency change may go ahead.
    emergency = await create(svc, "emergency", service, **window(start_in_minutes=-5))
    await move(svc, emergency, "authorize")
    await approve(svc, emergency, "mia", force=True)
    assert (await move(svc, emergency, "implement"))["status"] == "implement"
    listed = (await svc.client.get(f"/api/v1/freezes?service={service}",
                                   headers=svc.auth("viewer"))).json()["items"]
    assert [f["id"] for f in listed] == [freeze["id"]]
    # Ending it early lifts it.
    r = await svc.client.post(f"/api/v1/freezes/{freeze['id']}/transitions",
                              json={"to": "ended", "reason": "sale over"},
                              headers=svc.auth("manager"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ended" and r.json()["allowed_transitions"] == []
    assert (await move(svc, change, "implement"))["status"] == "implement"
    events = await svc.events_about(freeze["id"], lambda evs: len(evs) >= 2)
    assert [e.type for e in events] == ["tandem.freeze.created", "tandem.freeze.transitioned"]
    assert events[1].data["freeze"]["status"] == "ended" and events[1].data["from"] == "active"
    listed = (await svc.client.get(f"/api/v1/freezes?service={service}",
                                   headers=svc.auth("viewer"))).json()["items"]
    assert listed == []


async def test_freeze_clock_activates_and_ends_a_freeze_at_its_times(svc: ChangesService) -> None:
    now = datetime.now(UTC)
    r = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
        "services": [], "starts_at": (now + timedelta(seconds=1)).isoformat(),
        "ends_at": (now + timedelta(seconds=2)).isoformat(), "reason": "migration"})
    assert r.status_code == 201, r.text
    freeze = r.json()
    assert freeze["status"] == "scheduled" and freeze["services"] == []
    events = await svc.events_about(freeze["id"], lambda evs: len(evs) >= 3)
    assert [(e.data.get("from"), e.data["freeze"]["status"]) for e in events] == [
        (None, "scheduled"), ("scheduled", "active"), ("active", "ended")]
    assert [e.sequence for e in events] == [1, 2, 3]
    got = (await svc.client.get(f"/api/v1/freezes/{freeze['number']}",
                                headers=svc.auth("viewer"))).json()
    assert got["status"] == "ended"
    bad = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
        "starts_at": now.isoformat(), "ends_at": (now - timedelta(hours=1)).isoformat(),
        "reason": "x"})
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["ends_at"]
    bad = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
        "services": ["Not a service"], "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "x"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "services.0"


async def test_patch_edits_fields_with_if_match_and_publishes_the_diff(
        svc: ChangesService) -> None:
    service = unique_service()
    change = await create(svc, "normal", service)
    url = f"/api/v1/changes/{change['id']}"
    r = await svc.client.patch(url, json={"title": "New title"},
                               headers={**svc.auth("practitioner"), "If-Match": '"7"'})
    assert r.status_code == 412
    plus_two = timezone(timedelta(hours=2))
    new_window = {k: datetime.fromisoformat(v).astimezone(plus_two).isoformat()
                  for k, v in window(start_in_minutes=60, hours=6).items()}
    r = await svc.client.patch(url, json={"title": "New title", **new_window},
                               headers={**svc.auth("practitioner"), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    edited = r.json()
    assert edited["title"] == "New title" and edited["version"] == 2
    assert edited["planned_start"].endswith("Z")  # kept in UTC whatever offset was sent
    assert datetime.fromisoformat(edited["planned_start"]) == datetime.fromisoformat(
        new_window["planned_start"])
    assert r.headers["etag"] == '"2"'
    assert edited["risk_rule"] == "production window of 4 hours or more"
    events = await svc.events_about(change["id"], lambda evs: len(evs) >= 2)
    assert events[1].type == "tandem.change.updated"
    assert events[1].data["changes"]["title"] == ["normal change", "New title"]
    assert set(events[1].data["changes"]) >= {"planned_start", "planned_end", "risk_rule"}
    r = await svc.client.patch(url, json={"planned_end": new_window["planned_start"]},
                               headers=svc.auth("practitioner"))
    assert r.status_code == 422
    standard = await create(svc, "standard", service, **window(start_in_minutes=600))
    await move(svc, standard, "scheduled")
    r = await svc.client.patch(f"/api/v1/changes/{standard['id']}", json=window(),
                               headers=svc.auth("practitioner"))
    assert r.status_code == 409


async def test_calendar_shows_changes_and_freezes_in_a_window(svc: ChangesService) -> None:
    service = unique_service()
    inside = await create(svc, "standard", service, **window(start_in_minutes=24 * 60))
    await create(svc, "standard", service, **window(start_in_minutes=5 * 24 * 60))
    start = datetime.now(UTC) + timedelta(hours=20)
    r = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
        "services": [service], "starts_at": (start + timedelta(hours=1)).isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(), "reason": "audit"})
    freeze = r.json()
    r = await svc.client.get("/api/v1/calendar", headers=svc.auth("viewer"), params={
        "from": start.isoformat(), "to": (start + timedelta(days=2)).isoformat(),
        "service": service})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in r.json()["changes"]] == [inside["id"]]
    assert [f["id"] for f in r.json()["freezes"]] == [freeze["id"]]
    assert "from" in r.json()
    r = await svc.client.get("/api/v1/calendar", headers=svc.auth("viewer"), params={
        "from": start.isoformat(), "to": start.isoformat()})
    assert r.status_code == 422


async def test_creating_with_an_idempotency_key_replays_the_first_answer(
        svc: ChangesService) -> None:
    body = {"type": "standard", "title": "Bump", "service": unique_service(),
            "environment": "staging", **window()}
    headers = {**svc.auth("practitioner"), "Idempotency-Key": "k-" + body["service"]}
    first = await svc.client.post("/api/v1/changes", json=body, headers=headers)
    again = await svc.client.post("/api/v1/changes", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    listed = (await svc.client.get(f"/api/v1/changes?service={body['service']}",
                                   headers=svc.auth("viewer"))).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"] is None


OPS = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(sorted({t for e in MODEL.values()
                                                       for _, t in e})), st.booleans()),
    st.tuples(st.just("approve"), st.sampled_from(["approve", "reject"]), st.booleans()),
    st.tuples(st.just("freeze"), st.just(""), st.just(False)),
)
PROGRAMS = st.tuples(st.sampled_from(["standard", "normal", "emergency"]),
                     st.lists(OPS, min_size=3, max_size=10))


def generated_programs(count: int) -> list[tuple[str, list[tuple[str, str, bool]]]]:
    """Programs drawn by hypothesis (generation only: the HTTP run below checks each)."""
    programs: list[tuple[str, list[tuple[str, str, bool]]]] = []

    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(PROGRAMS)
    def collect(program: tuple[str, list[tuple[str, str, bool]]]) -> None:
        programs.append(program)

    collect()
    return programs


async def test_no_sequence_of_api_calls_leaves_the_model_or_passes_a_freeze(
        svc: ChangesService) -> None:
    runs = []
    for type_, ops in generated_programs(10):
        service = unique_service()
        change = await create(svc, type_, service, **window(start_in_minutes=-5))
        url = f"/api/v1/changes/{change['id']}"
        freeze: dict[str, Any] | None = None
        version, frozen_at_versions = 1, set()
        for n, (op, arg, flag) in enumerate(ops):
            if op == "move":
                role = "manager" if flag else "practitioner"
                r = await svc.client.post(f"{url}/transitions", headers=svc.auth(role, "pat"),
                                          json={"to": arg, "force": flag,
                                                "close_code": "successful"})
            elif op == "approve":
                r = await svc.client.post(f"{url}/approvals", headers=svc.auth("manager", f"m{n}"),
                                          json={"decision": arg, "force": flag})
            elif freeze is None:
                now = datetime.now(UTC)
                r = await svc.client.post("/api/v1/freezes", headers=svc.auth("manager"), json={
                    "services": [service], "starts_at": (now - timedelta(minutes=1)).isoformat(),
                    "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "property"})
                freeze = r.json()
                continue
            else:
                r = await svc.client.post(f"/api/v1/freezes/{freeze['id']}/transitions",
                                          headers=svc.auth("manager"), json={"to": "ended"})
                freeze = None
                continue
            assert r.status_code in (200, 201, 403, 409, 422), r.text
            if r.status_code in (200, 201):
                if freeze is not None:
                    frozen_at_versions |= set(range(version + 1, r.json()["version"] + 1))
                version = r.json()["version"]
        runs.append((change["id"], type_, ops, version, frozen_at_versions))

    def all_published(evs: list[Any]) -> bool:
        seen: dict[str, int] = {}
        for e in evs:
            seen[e.subject] = seen.get(e.subject, 0) + 1
        return all(seen.get(id_, 0) >= v for id_, _, _, v, _ in runs)

    events = await svc.watcher.wait_for(all_published)
    for id_, type_, ops, version, frozen_at_versions in runs:
        mine = [e for e in events if e.subject == id_]
        assert [e.sequence for e in mine] == list(range(1, version + 1))
        for e in mine:
            if e.type != "tandem.change.transitioned":
                continue
            assert (e.data["from"], e.data["to"]) in MODEL[type_], (type_, ops)
            if e.data["to"] == "implement" and type_ != "emergency":
                assert e.sequence not in frozen_at_versions, (type_, ops)
