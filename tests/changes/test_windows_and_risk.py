"""Windows and risk as ops people check them, over HTTP on both databases:

- implementing a change outside its planned window needs a manager's ``force`` (recorded on
  the change and its event); an emergency change's window is extended to cover now instead,
  with the reason recorded;
- a requester may propose a risk no lower than the rules'; a manager may lower it with a
  reason (403 or 422 problems naming the field otherwise).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from changes_support import ChangesService, create, move, unique_service, window

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def approve(svc: ChangesService, change: dict[str, Any], sub: str = "mia") -> Any:
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": "approve"}, headers=svc.auth("manager", sub))
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_normal_change_planned_for_tomorrow_is_implemented_now_only_by_force(
        svc: ChangesService) -> None:
    change = await create(svc, "normal", unique_service(), **window(start_in_minutes=20 * 60))
    await move(svc, change, "assess")
    await move(svc, change, "authorize")
    assert (await approve(svc, change))["status"] == "scheduled"

    refused = await move(svc, change, "implement", expect=409)
    assert refused["type"].endswith("outside-window")
    await move(svc, change, "implement", role="manager", expect=409)
    assert (await move(svc, change, "implement", expect=403, force=True))["status"] == 403

    forced = await move(svc, change, "implement", role="manager", force=True,
                        reason="the vendor's fix cannot wait")
    assert (forced["status"], forced["window_forced_by"]) == ("implement", "pat")
    [event] = [e for e in await svc.events_about(change["id"], lambda evs: any(
        e.data.get("to") == "implement" for e in evs)) if e.data.get("to") == "implement"]
    assert event.data["forced"] is True


async def test_an_emergency_change_whose_window_ended_has_it_extended_with_a_reason(
        svc: ChangesService) -> None:
    start = datetime.now(UTC) - timedelta(hours=3)
    planned = {"planned_start": start.isoformat(),
               "planned_end": (start + timedelta(hours=1)).isoformat()}
    change = await create(svc, "emergency", unique_service(), **planned)
    await move(svc, change, "authorize")
    before = datetime.now(UTC)
    scheduled = await approve(svc, change)
    assert scheduled["status"] == "scheduled"
    new_start = datetime.fromisoformat(scheduled["planned_start"])
    new_end = datetime.fromisoformat(scheduled["planned_end"])
    assert new_start >= before and new_end - new_start == timedelta(hours=1)
    assert "outside its planned window" in scheduled["window_extended_reason"]
    implemented = await move(svc, change, "implement")
    assert (implemented["status"], implemented["window_forced_by"]) == ("implement", None)
    [event] = [e for e in await svc.events_about(change["id"], lambda evs: any(
        e.data.get("to") == "scheduled" for e in evs)) if e.data.get("to") == "scheduled"]
    assert [datetime.fromisoformat(t) for t in event.data["window_extended_from"]] == [
        datetime.fromisoformat(planned["planned_start"]),
        datetime.fromisoformat(planned["planned_end"])]


async def post_change(svc: ChangesService, role: str, expect: int, **fields: Any) -> Any:
    body = {"type": "normal", "title": "Resize the pool", "service": unique_service(),
            "environment": "production", **window(start_in_minutes=-5), **fields}
    r = await svc.client.post("/api/v1/changes", json=body, headers=svc.auth(role, "pat"))
    assert r.status_code == expect, r.text
    return r.json()


async def test_a_requester_proposes_no_lower_risk_than_the_rules_and_a_manager_lowers_it(
        svc: ChangesService) -> None:
    # The rules give a normal production change "moderate".
    refused = await post_change(svc, "practitioner", 403, risk="low")
    assert refused["type"].endswith("risk-below-rules")
    assert [e["field"] for e in refused["errors"]] == ["risk"]

    raised = await post_change(svc, "practitioner", 201, risk="high")
    assert (raised["risk"], raised["risk_lowered_by"]) == ("high", None)
    assert "moderate" in raised["risk_rule"]
    same = await post_change(svc, "practitioner", 201, risk="moderate")
    assert (same["risk"], same["risk_rule"]) == ("moderate", "normal change in production")

    unexplained = await post_change(svc, "manager", 422, risk="low")
    assert [e["field"] for e in unexplained["errors"]] == ["risk_reason"]
    lowered = await post_change(svc, "manager", 201, risk="low",
                                risk_reason="a config flag, rolled back in seconds")
    assert (lowered["risk"], lowered["risk_lowered_by"], lowered["risk_reason"]) == (
        "low", "pat", "a config flag, rolled back in seconds")
    assert "lowered by pat from the rules' moderate" in lowered["risk_rule"]

    # PATCH holds to the same rule.
    r = await svc.client.patch(f"/api/v1/changes/{raised['id']}", json={"risk": "low"},
                               headers=svc.auth("practitioner", "pat"))
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "risk", r.text
    r = await svc.client.patch(f"/api/v1/changes/{raised['id']}",
                               json={"risk": "low", "risk_reason": "tested in staging"},
                               headers=svc.auth("manager", "mia"))
    assert r.status_code == 200, r.text
    assert (r.json()["risk"], r.json()["risk_lowered_by"]) == ("low", "mia")
