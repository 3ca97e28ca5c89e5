"""Change requests over HTTP: types and their paths, approvals, conflicts, freezes, edits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from changes_support import ChangesService, unique_service

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: This module's service needs two approvals per normal change (the setting is honoured).
REQUIRED_APPROVALS = 2


def window(start_in_minutes: float = 10, hours: float = 1) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=start_in_minutes)
    return {"planned_start": start.isoformat(),
            "planned_end": (start + timedelta(hours=hours)).isoformat()}


async def create(svc: ChangesService, type_: str, service: str, role: str = "practitioner",
                 sub: str = "pat", **extra: Any) -> dict[str, Any]:
    body = {"type": type_, "title": f"{type_} change", "service": service,
            "environment": "production", **window(), **extra}
    r = await svc.client.post("/api/v1/changes", json=body, headers=svc.auth(role, sub))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def move(svc: ChangesService, change: dict[str, Any], to: str, role: str = "practitioner",
               expect: int = 200, **extra: Any) -> dict[str, Any]:
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/transitions",
                              json={"to": to, **extra}, headers=svc.auth(role, "pat"))
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


async def approve(svc: ChangesService, change: dict[str, Any], sub: str,
                  decision: str = "approve", expect: int = 201, **extra: Any) -> dict[str, Any]:
    r = await svc.client.post(f"/api/v1/changes/{change['id']}/approvals",
                              json={"decision": decision, "comment": "ok", **extra},
                              headers=svc.auth("manager", sub))
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


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
