"""Assignment by ownership (SQLite and PostgreSQL, the real broker): an incident opened with no
assignment group, by a person, a monitor or a failed deployment, gets its service's operations
team from the catalog's events; incident metrics take ``team=``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from incidents_support import (
    ROUTING_KEY,
    CatalogFeed,
    Running,
    deployment,
    known_as_run_by,
    run_deployment,
    s2_of,
    unique_service,
)

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The service the module's routing key sends monitor alerts to.
MONITORED = "checkout"


async def incident(svc: Running, ref: str) -> dict[str, Any]:
    r = await svc.client.get(f"/api/v1/incidents/{ref}", headers=svc.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def assigned(svc: Running, ref: str, group: str | None) -> dict[str, Any]:
    async def check() -> Any:
        found = await incident(svc, ref)
        return found if found["assignment_group"] == group else None
    return await eventually(check)  # type: ignore[no-any-return]


async def test_incidents_of_a_service_go_to_its_operations_team(svc: Running) -> None:
    catalog = CatalogFeed(svc)
    service, ops = unique_service(), f"ops-{uuid.uuid4().hex[:6]}"
    # Opened before the catalog knew the service: nobody; the catalog's word assigns it.
    early = await svc.create(service=service)
    assert early["assignment_group"] is None
    await catalog.service(service, owner=f"dev-{ops}", operations=ops)
    moved = await assigned(svc, early["id"], ops)
    assert moved["version"] == 2
    [*_, update] = await svc.events_about(early["id"], lambda evs: len(evs) >= 2)
    assert update.type == "tandem.incident.updated"
    assert update.data["changes"] == {"assignment_group": [None, ops]}

    by_person = await svc.create(service=service)
    assert by_person["assignment_group"] == ops
    chosen = await svc.create(service=service, assignment_group="database-team")
    assert chosen["assignment_group"] == "database-team"


async def test_a_monitors_incident_goes_to_the_operations_team(svc: Running) -> None:
    catalog = CatalogFeed(svc)
    ops = f"ops-{uuid.uuid4().hex[:6]}"
    await catalog.service(MONITORED, owner="checkout-dev", operations=ops)
    await known_as_run_by(svc, MONITORED, ops)
    r = await svc.client.post("/v2/enqueue", json={
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": uuid.uuid4().hex,
        "payload": {"summary": "Checkout p99 over 2s", "source": "prometheus",
                    "severity": "error"}})
    assert r.status_code == 202, r.text

    async def opened() -> Any:  # applied right after the 202
        listed = await svc.client.get("/api/v1/incidents", params={"service": MONITORED,
                                                                   "source": "monitor"},
                                      headers=svc.headers("viewer"))
        return next((i for i in listed.json()["items"]
                     if i["dedup_key"] == r.json()["dedup_key"]), None)

    assert (await eventually(opened))["assignment_group"] == ops  # type: ignore[index]


async def test_a_failed_deploy_opens_an_incident_for_the_operations_team(svc: Running) -> None:
    catalog = CatalogFeed(svc)
    service, ops = unique_service(), f"ops-{uuid.uuid4().hex[:6]}"
    await catalog.service(service, owner=None, operations=ops)
    await known_as_run_by(svc, service, ops)
    d = deployment(service, started=datetime.now(UTC) - timedelta(minutes=2))
    await run_deployment(svc, d, "in_progress", "failed")

    s2 = await s2_of(svc, service)
    assert (s2["cause_deployment_id"], s2["assignment_group"]) == (d["id"], ops)


async def test_an_unowned_service_leaves_it_unassigned_until_someone_runs_it(
        svc: Running) -> None:
    catalog = CatalogFeed(svc)
    service, ops = unique_service(), f"ops-{uuid.uuid4().hex[:6]}"
    await catalog.service(service, owner=None, operations=None, tier=None)
    waiting = await svc.create(service=service)
    resolved = await svc.create(service=service)
    r = await svc.move(resolved, "resolved", resolution_code="solution_provided",
                       resolution_notes="restarted")
    assert r.status_code == 200, r.text
    # Owned, then run by an operations team: the open one is theirs, the resolved one is left.
    await catalog.service(service, owner=f"dev-{ops}", operations=None)
    assert (await assigned(svc, waiting["id"], f"dev-{ops}"))["version"] == 2
    await catalog.service(service, owner=f"dev-{ops}", operations=ops)
    await known_as_run_by(svc, service, ops)
    assert (await svc.create(service=service))["assignment_group"] == ops
    assert (await incident(svc, waiting["id"]))["assignment_group"] == f"dev-{ops}"
    assert (await incident(svc, resolved["id"]))["assignment_group"] is None


async def test_incident_metrics_by_team_count_the_services_the_team_runs(svc: Running) -> None:
    catalog = CatalogFeed(svc)
    team = f"ops-{uuid.uuid4().hex[:6]}"
    ours, theirs = unique_service(), unique_service()
    await catalog.service(ours, owner=f"dev-{team}", operations=team)
    await catalog.service(theirs, owner="someone-else", operations="others")
    await known_as_run_by(svc, ours, team)
    await known_as_run_by(svc, theirs, "others")
    for service in (ours, theirs):
        probe = await svc.create(service=service)
        r = await svc.move(probe, "resolved", resolution_code="solution_provided",
                           resolution_notes="done")
        assert r.status_code == 200, r.text
    r = await svc.client.get("/api/v1/incident-metrics", params={"team": team},
                             headers=svc.headers("viewer"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["team"], body["services"], body["mttr"]["count"]) == (team, [ours], 1)
    dev = await svc.client.get("/api/v1/incident-metrics", params={"team": f"dev-{team}"},
                               headers=svc.headers("viewer"))
    assert dev.json()["services"] == [ours]
    nobody = await svc.client.get("/api/v1/incident-metrics", params={"team": "no-such-team"},
                                  headers=svc.headers("viewer"))
    assert (nobody.json()["services"], nobody.json()["mttr"]["count"]) == ([], 0)
