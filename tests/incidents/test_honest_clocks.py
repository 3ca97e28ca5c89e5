"""Honest clocks, over HTTP on both databases with the real broker:

- a reopen is no acknowledgement: an incident resolved without one stays unacknowledged, and
  MTTA leaves it out;
- the resolution SLA stands still while an incident is resolved, and while it is on hold
  awaiting the caller or a vendor (not for other reasons); the due time shown moves on when the
  clock resumes, and the breach fires once, against the moved due time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from incidents_support import Running, incidents_service, unique_service

from tandem_cli.broker import EmbeddedBroker
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: P5 incidents: a response target far away, a resolution target of a few seconds.
RESOLUTION_S = 5


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, broker: EmbeddedBroker,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async with incidents_service(
            broker, tmp_path_factory.mktemp("clocks"), request.param,
            sla_targets=f"1=15m/4h,2=30m/8h,3=4h/3d,4=1d/5d,5=1h/{RESOLUTION_S}s",
            sla_check_interval_s=0.1) as running:
        yield running


async def moved(svc: Running, incident: dict[str, Any], to: str, **fields: Any) -> Any:
    r = await svc.move(incident, to, **fields)
    assert r.status_code == 200, r.text
    return r.json()


async def get(svc: Running, incident: dict[str, Any]) -> Any:
    r = await svc.client.get(f"/api/v1/incidents/{incident['id']}", headers=svc.headers())
    return r.json()


RESOLVE = {"resolution_code": "solution_provided", "resolution_notes": "restarted"}


async def test_a_reopen_is_no_acknowledgement_and_mtta_leaves_it_out(svc: Running) -> None:
    service = unique_service()
    never = await svc.create(service=service)
    await moved(svc, never, "resolved", **RESOLVE)
    reopened = await moved(svc, never, "in_progress", reason="came back")
    assert (reopened["reopen_count"], reopened["acknowledged_at"]) == (1, None)

    acked = await svc.create(service=service)
    acked = await moved(svc, acked, "acknowledged")
    assert acked["acknowledged_at"] is not None
    started = await svc.create(service=service)
    started = await moved(svc, started, "in_progress")  # starting work is the first response
    assert started["acknowledged_at"] is not None

    r = await svc.client.get("/api/v1/incident-metrics", params={"service": service},
                             headers=svc.headers("viewer"))
    assert r.json()["mtta"]["count"] == 2


async def _breached(svc: Running, incident: dict[str, Any]) -> Any:
    now = await get(svc, incident)
    return now if now["resolution_breached_at"] is not None else None


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def test_the_resolution_clock_stands_still_while_resolved_or_awaiting_a_vendor(
        svc: Running) -> None:
    resolved = await svc.create(impact=3, urgency=3)
    vendor = await svc.create(impact=3, urgency=3)
    change = await svc.create(impact=3, urgency=3)
    assert resolved["priority"] == 5
    due = {i["id"]: _at(i["resolution_due_at"]) for i in (resolved, vendor, change)}

    paused = await moved(svc, resolved, "resolved", **RESOLVE)
    assert paused["resolution_paused_at"] is not None
    await moved(svc, vendor, "in_progress")
    await moved(svc, vendor, "on_hold", on_hold_reason="awaiting_vendor")
    await moved(svc, change, "in_progress")
    held = await moved(svc, change, "on_hold", on_hold_reason="awaiting_change")
    assert held["resolution_paused_at"] is None  # awaiting a change does not pause it

    await asyncio.sleep(RESOLUTION_S + 2)
    # The clock that ran has breached (the check runs every 0.1 s; a loaded machine may take
    # longer); the two that stood still have not, though their due times passed before its.
    breached = await eventually(
        lambda: _breached(svc, change), timeout=20)
    assert breached["resolution_breached_at"] is not None
    assert (await get(svc, resolved))["resolution_breached_at"] is None
    assert (await get(svc, vendor))["resolution_breached_at"] is None

    reopened = await moved(svc, resolved, "in_progress", reason="came back")
    resumed = await moved(svc, vendor, "in_progress")
    for incident in (reopened, resumed):
        new_due = _at(incident["resolution_due_at"])
        assert new_due - due[incident["id"]] >= timedelta(seconds=RESOLUTION_S + 2)
        assert incident["resolution_paused_at"] is None
        assert incident["resolution_paused_seconds"] >= RESOLUTION_S + 2
        assert incident["resolution_breached_at"] is None  # not against the original due time

    def breaches(evs: list[Any], subject: str) -> list[Any]:
        return list({e.id: e for e in evs if e.subject == subject
                     and e.type == "tandem.incident.sla_breached"}.values())

    events = await svc.watcher.wait_for(
        lambda evs: len(breaches(evs, reopened["id"])) == 1
        and len(breaches(evs, resumed["id"])) == 1, timeout=30)
    await asyncio.sleep(1)  # a second breach would have fired by now
    events = await svc.watcher.wait_for(lambda evs: True)
    for incident in (reopened, resumed):
        [breach] = breaches(events, incident["id"])
        assert (breach.data["breach"]["kind"], _at(breach.data["breach"]["due_at"])) == (
            "resolution", _at(incident["resolution_due_at"]))
        assert _at(breach.data["breach"]["detected_at"]) >= _at(incident["resolution_due_at"])
