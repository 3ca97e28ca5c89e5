"""Who owns what, across the wall (issue 16): the catalog, incidents, changes and deployments
running together on one set of topics, each on its own database (SQLite, then PostgreSQL), all
driven over HTTP. Nothing is published by the test: every reaction comes from the services'
own events.

- a descriptor import (and a second one changing nothing);
- a failed deploy of an imported service opens an incident assigned to its operations team;
- a tier-1 change stays in authorize with only the owner team's approval and is scheduled
  after the operations team's;
- a pipeline creating a standard change outside a template, and deploying with one, is refused;
- an unknown service registers by itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from catalog_support import descriptors, unique
from fastapi import FastAPI

from catalog.config import MIGRATIONS_DIR as CATALOG_MIGRATIONS
from catalog.config import CatalogSettings
from catalog.main import create_app as create_catalog
from changes.config import MIGRATIONS_DIR as CHANGES_MIGRATIONS
from changes.config import ChangesSettings
from changes.main import create_app as create_changes
from deployments.config import MIGRATIONS_DIR as DEPLOYMENTS_MIGRATIONS
from deployments.config import DeploymentsSettings
from deployments.main import create_app as create_deployments
from deployments.rules.gate import GateMode
from incidents.config import MIGRATIONS_DIR as INCIDENTS_MIGRATIONS
from incidents.config import IncidentsSettings
from incidents.main import create_app as create_incidents
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    auth_headers,
    eventually,
    isolated_platform,
    migrated_database,
    running_service,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Wall:
    """The four services, a client each, and the deployments settings (the gate mode)."""

    platform: PlatformSettings
    clients: dict[str, httpx.AsyncClient]
    deployments: DeploymentsSettings

    def headers(self, role: str, sub: str | None = None) -> dict[str, str]:
        return auth_headers(self.platform, role, sub)

    async def call(self, service: str, method: str, path: str, *, role: str = "viewer",
                   sub: str | None = None, expect: int = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        r = await self.clients[service].request(
            method, path, headers={**self.headers(role, sub), **(headers or {})}, **kwargs)
        assert r.status_code == expect, f"{method} {service}{path}: {r.status_code} {r.text}"
        return r.json()



@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def wall(request: pytest.FixtureRequest, broker: EmbeddedBroker,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wall]:
    directory = tmp_path_factory.mktemp("wall")
    platform = isolated_platform(broker.bootstrap, directory)
    await ensure_topics(platform, platform.all_topics())
    async with AsyncExitStack() as stack:
        deployments = DeploymentsSettings(database_url=await migrated_database(
            stack, "deployments", directory, request.param, DEPLOYMENTS_MIGRATIONS))
        async def url(name: str, migrations: Path) -> str:
            return await migrated_database(stack, name, directory, request.param, migrations)

        apps: dict[str, FastAPI] = {
            "catalog": create_catalog(platform, CatalogSettings(
                database_url=await url("catalog", CATALOG_MIGRATIONS))),
            "incidents": create_incidents(platform, IncidentsSettings(
                database_url=await url("incidents", INCIDENTS_MIGRATIONS))),
            "changes": create_changes(platform, ChangesSettings(
                database_url=await url("changes", CHANGES_MIGRATIONS))),
            "deployments": create_deployments(platform, deployments),
        }
        clients = {name: await stack.enter_async_context(running_service(app))
                   for name, app in apps.items()}
        await eventually(lambda: all(c.started.is_set() for app in apps.values()
                                     for c in app.state.runtime.consumers), timeout=60)
        yield Wall(platform, clients, deployments)


async def imported(wall: Wall) -> tuple[str, str, str]:
    """A tier-1 service with its developers' and operations teams, imported, and known by the
    incidents and changes services (their projections have caught up)."""
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    text = descriptors(service, dev, ops, members=([f"{dev}-lead", f"{dev}-ann"],
                                                   [f"{ops}-lead"]))
    result = await wall.call("catalog", "POST", "/api/v1/catalog/import", role="owner",
                             content=text.encode(), headers={"Content-Type": "text/yaml"})
    assert result["services"]["created"] == [service]

    async def incidents_know() -> bool:
        metrics = await wall.call("incidents", "GET", "/api/v1/incident-metrics",
                                  params={"team": ops})
        return metrics["services"] == [service]

    async def changes_know() -> bool:
        listed = await wall.call("changes", "GET", "/api/v1/changes",
                                 params={"service": service, "limit": 1})
        probe = listed["items"][0] if listed["items"] else await wall.call(
            "changes", "POST", "/api/v1/changes", role="practitioner", expect=201,
            json={"type": "normal", "title": "probe", "service": service,
                  "environment": "staging"})
        rule = (await wall.call("changes", "GET", f"/api/v1/changes/{probe['id']}"))[
            "approval_rule"]
        return rule["kind"] == "ownership" and not rule["note"]

    await eventually(incidents_know, timeout=30)
    await eventually(changes_know, timeout=30)
    return service, dev, ops


async def test_a_descriptor_import_and_a_second_one_that_changes_nothing(wall: Wall) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    text = descriptors(service, dev, ops).encode()
    first = await wall.call("catalog", "POST", "/api/v1/catalog/import", role="owner",
                            content=text)
    assert first["changed"] is True
    again = await wall.call("catalog", "POST", "/api/v1/catalog/import", role="owner",
                            content=text)
    assert (again["changed"], again["services"]["unchanged"]) == (False, [service])
    refused = await wall.call("catalog", "POST", "/api/v1/catalog/import", role="owner",
                              expect=422, content=text + b"---\nkind: Widget\n")
    assert refused["errors"][0]["document"] == 5


async def test_a_failed_deploy_of_an_imported_service_opens_an_incident_for_its_operations_team(
        wall: Wall) -> None:
    service, _, ops = await imported(wall)
    wall.deployments.gate_mode = GateMode.receipt
    dep = await wall.call("deployments", "POST", "/api/v1/deployments", role="pipeline",
                          expect=201, json={"service": service, "environment": "production",
                                            "version": "3.1.0"})
    assert dep["gate"]["decision"] == "allowed"
    for to in ("in_progress", "failed"):
        await wall.call("deployments", "POST", f"/api/v1/deployments/{dep['id']}/transitions",
                        role="pipeline", json={"to": to})

    async def opened() -> Any:
        found = await wall.call("incidents", "GET", "/api/v1/incidents",
                                params={"service": service})
        return found["items"]

    [incident] = await eventually(opened, timeout=30)  # type: ignore[misc]
    assert (incident["source"], incident["cause_deployment_id"]) == ("deployment", dep["id"])
    assert incident["assignment_group"] == ops
    assigned = await wall.call("incidents", "GET", "/api/v1/incidents",
                               params={"assignment_group": ops})
    assert [i["id"] for i in assigned["items"]] == [incident["id"]]


async def test_a_tier_1_change_is_scheduled_only_after_both_teams_approve(wall: Wall) -> None:
    service, dev, ops = await imported(wall)
    start = datetime.now(UTC) + timedelta(hours=1)
    change = await wall.call("changes", "POST", "/api/v1/changes", role="practitioner",
                             sub="pat", expect=201, json={
                                 "type": "normal", "title": "Rotate the card vault keys",
                                 "service": service, "environment": "production",
                                 "planned_start": start.isoformat(),
                                 "planned_end": (start + timedelta(hours=1)).isoformat()})
    for to in ("assess", "authorize"):
        await wall.call("changes", "POST", f"/api/v1/changes/{change['id']}/transitions",
                        role="practitioner", sub="pat", json={"to": to})
    owner = await wall.call("changes", "POST", f"/api/v1/changes/{change['id']}/approvals",
                            role="manager", sub=f"{dev}-lead", expect=201,
                            json={"decision": "approve"})
    assert owner["status"] == "authorize"
    assert owner["approval_rule"]["missing"] == [ops]
    outsider = await wall.call("changes", "POST", f"/api/v1/changes/{change['id']}/approvals",
                               role="manager", sub="carol", expect=403,
                               json={"decision": "approve"})
    assert outsider["type"] == "urn:tandem:problem:not-on-the-owning-teams"
    scheduled = await wall.call("changes", "POST", f"/api/v1/changes/{change['id']}/approvals",
                                role="manager", sub=f"{ops}-lead", expect=201,
                                json={"decision": "approve"})
    assert (scheduled["status"], scheduled["approvals_received"]) == ("scheduled", 2)


async def test_a_pipeline_cannot_authorize_its_own_deploy(wall: Wall) -> None:
    service = unique("self")
    wall.deployments.gate_mode = GateMode.approval
    try:
        refused = await wall.call("changes", "POST", "/api/v1/changes", role="pipeline",
                                  expect=403, json={"type": "standard", "title": "Ship it",
                                                    "service": service,
                                                    "environment": "production"})
        assert refused["type"] == "urn:tandem:problem:standard-change-template-required"
        # Outside a template (a person's), moved to scheduled: it still authorizes nothing.
        now = datetime.now(UTC)
        own = await wall.call("changes", "POST", "/api/v1/changes", role="practitioner",
                              expect=201, json={"type": "standard", "title": "Ship it",
                                                "service": service,
                                                "environment": "production",
                                                "planned_start": now.isoformat(),
                                                "planned_end": (now + timedelta(hours=1))
                                                .isoformat()})
        await wall.call("changes", "POST", f"/api/v1/changes/{own['id']}/transitions",
                        role="pipeline", json={"to": "scheduled"})

        async def gate_for(change_id: str) -> Any:
            dep = await wall.call("deployments", "POST", "/api/v1/deployments",
                                  role="pipeline", expect=201, json={
                                      "service": service, "environment": "production",
                                      "version": uuid.uuid4().hex[:6], "change_id": change_id})
            # Until the gate's projection has the change as scheduled, the gate waits for it.
            return dep if dep["gate"]["decision"] != "awaiting" else None

        outside = await eventually(lambda: gate_for(own["id"]), timeout=30)
        assert (outside["gate"]["decision"],  # type: ignore[index]
                [r["code"] for r in outside["gate"]["reasons"]]) == (  # type: ignore[index]
            "prevented", ["change_outside_template"])
        # From the owner's template, the same path is pre-authorized (the slot freed first).
        await wall.call("changes", "POST", f"/api/v1/changes/{own['id']}/transitions",
                        role="practitioner", json={"to": "canceled"})
        template = await wall.call("changes", "POST", "/api/v1/standard-changes", role="owner",
                                   expect=201, json={"service": service, "title": "Ship it",
                                                     "max_window_minutes": 60})
        templated = await wall.call("changes", "POST", "/api/v1/changes", role="pipeline",
                                    expect=201, json={"type": "standard", "service": service,
                                                      "environment": "production",
                                                      "template_id": template["id"]})
        await wall.call("changes", "POST", f"/api/v1/changes/{templated['id']}/transitions",
                        role="pipeline", json={"to": "scheduled"})

        async def allowed() -> Any:
            dep = await gate_for(templated["id"])
            return dep if dep and dep["gate"]["decision"] == "allowed" else None

        assert await eventually(allowed, timeout=30)
    finally:
        wall.deployments.gate_mode = GateMode.receipt


async def test_an_unknown_service_registers_by_itself(wall: Wall) -> None:
    service = unique("legacy")
    await wall.call("deployments", "POST", "/api/v1/deployments", role="pipeline", expect=201,
                    json={"service": service, "environment": "staging", "version": "0.9"})

    async def registered() -> Any:
        r = await wall.clients["catalog"].get(f"/api/v1/services/{service}",
                                              headers=wall.headers("viewer"))
        return r.json() if r.status_code == 200 else None

    found = await eventually(registered, timeout=30)
    assert (found["source"], found["unowned"], found["owner_team"]) == (  # type: ignore[index]
        "discovered", True, None)
    unowned = await wall.call("catalog", "GET", "/api/v1/services",
                              params={"unowned": "true", "limit": 200})
    assert service in [s["name"] for s in unowned["items"]]
