"""Recovery from a failed deploy, as the incidents service sees it: the S2 incident's priority
by the catalog's tier (a monitor or a manager can raise it), and closing the loop: a
recovering deployment's success mitigates the incident and, with
``TANDEM_INCIDENTS_RESOLVE_ON_RECOVERY``, resolves it (``rolled_back`` or
``resolved_by_change``). Over the real broker, on both databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from incidents_support import (
    ROUTING_KEY,
    CatalogFeed,
    Running,
    deployment,
    deployment_event,
    incidents_service,
    run_deployment,
    s2_of,
    unique_service,
)

from tandem_cli.broker import EmbeddedBroker
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: The service the module's routing key sends monitor alerts to.
MONITORED = "checkout"


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, broker: EmbeddedBroker,
              tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    """The incidents service resolving a failure's incident when its recovery succeeds."""
    async with incidents_service(broker, tmp_path_factory.mktemp("recovery"), request.param,
                                 resolve_on_recovery=True) as running:
        yield running


async def tier_known(svc: Running, catalog: CatalogFeed, service: str,
                     tier: int | None) -> None:
    """Write the service down with ``tier`` and wait until the projection has it (a failed
    deploy of another, unlisted service is opened meanwhile as the marker)."""
    await catalog.service(service, owner=None, operations=f"ops-{service}", tier=tier)

    async def applied() -> Any:  # an incident opened now is assigned by the catalog's word
        probe = await svc.create(service=service)
        return probe if probe["assignment_group"] == f"ops-{service}" else None

    await eventually(applied)


async def fail(svc: Running, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
    d = deployment(service, started=datetime.now(UTC) - timedelta(minutes=2))
    await run_deployment(svc, d, "in_progress", "failed")
    return d, await s2_of(svc, service)


@pytest.mark.parametrize(("tier", "priority"), [(1, 2), (2, 3), (None, 3)])
async def test_a_failed_deploys_priority_follows_the_catalog_tier(
        svc: Running, tier: int | None, priority: int) -> None:
    catalog = CatalogFeed(svc)
    service = unique_service()
    await tier_known(svc, catalog, service, tier)
    _, incident = await fail(svc, service)
    # Tier 1 -> P2 (major: it freezes the service); every other tier -> P3, not major.
    assert (incident["priority"], incident["major"]) == (priority, priority <= 2)


async def test_a_service_the_catalog_does_not_know_gets_the_other_tiers_priority(
        svc: Running) -> None:
    _, incident = await fail(svc, unique_service())
    assert (incident["priority"], incident["major"]) == (3, False)


async def test_a_monitor_seeing_the_same_service_fail_raises_it(svc: Running) -> None:
    catalog = CatalogFeed(svc)
    await tier_known(svc, catalog, MONITORED, 3)
    _, incident = await fail(svc, MONITORED)
    assert incident["priority"] == 3
    r = await svc.client.post("/v2/enqueue", json={
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": uuid.uuid4().hex,
        "payload": {"summary": "Checkout 5xx at 40%", "source": "prometheus",
                    "severity": "critical"}})
    assert r.status_code == 202, r.text

    async def raised() -> Any:
        r = await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                 headers=svc.headers("viewer"))
        body = r.json()
        return body if body["priority"] == 1 else None

    body = await eventually(raised)
    assert body["major"] is True and body["priority_overridden"] is True
    # A manager may still set it, as on any incident.
    r = await svc.client.patch(f"/api/v1/incidents/{incident['id']}", json={"priority": 2},
                               headers={**svc.headers("manager"),
                                        "If-Match": f'"{body["version"]}"'})
    assert r.status_code == 200, r.text
    assert r.json()["priority"] == 2


async def recovered(svc: Running, service: str, recovery: dict[str, Any]) -> dict[str, Any]:
    """A recovering deployment's run to success; returns its succeeded snapshot."""
    d = {**deployment(service, started=datetime.now(UTC)), "recovery": recovery}
    await run_deployment(svc, d, "in_progress")
    finished = datetime.now(UTC).isoformat()
    done = {**d, "status": "succeeded", "version": 3, "finished_at": finished}
    await svc.publish("deployments", deployment_event(
        "tandem.deployment.transitioned", sequence=3, deployment=done,
        **{"from": "in_progress", "to": "succeeded", "reason": ""}))
    return done


async def resolved(svc: Running, incident: dict[str, Any]) -> dict[str, Any]:
    async def check() -> Any:
        r = await svc.client.get(f"/api/v1/incidents/{incident['id']}",
                                 headers=svc.headers("viewer"))
        body = r.json()
        return body if body["status"] == "resolved" else None

    return await eventually(check)  # type: ignore[no-any-return]


async def test_a_rollbacks_success_mitigates_and_resolves_the_failures_incident(
        svc: Running) -> None:
    service = unique_service()
    failed, incident = await fail(svc, service)
    # An unrelated success of the service closes nothing.
    await run_deployment(svc, deployment(service), "in_progress", "succeeded")
    done = await recovered(svc, service, {"kind": "rollback", "deployment_id": failed["id"],
                                          "incident_id": None})
    body = await resolved(svc, incident)
    assert body["resolution_code"] == "rolled_back"
    assert datetime.fromisoformat(body["mitigated_at"]) == datetime.fromisoformat(
        done["finished_at"])
    assert done["number"] in body["resolution_notes"]


async def test_a_fix_forwards_success_resolves_the_incident_it_names_by_change(
        svc: Running) -> None:
    service = unique_service()
    _, incident = await fail(svc, service)
    await recovered(svc, service, {"kind": "fix_forward", "deployment_id": None,
                                   "incident_id": incident["id"]})
    body = await resolved(svc, incident)
    assert body["resolution_code"] == "resolved_by_change"
    assert body["mitigated_at"] is not None
