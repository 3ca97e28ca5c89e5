"""A service first named by another service's event registers by itself, unowned, once
(SQLite and PostgreSQL, events on the real broker)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from catalog_support import Catalog, descriptors, unique

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


def deployment(service: str) -> dict[str, object]:
    return {"id": str(uuid.uuid4()), "number": "DEP0000001", "service": service,
            "environment": "production", "status": "requested"}


async def registered(svc: Catalog, name: str) -> dict[str, object]:
    async def found() -> object:
        r = await svc.client.get(f"/api/v1/services/{name}", headers=svc.headers("viewer"))
        return r.json() if r.status_code == 200 else None
    return await eventually(found, timeout=20)  # type: ignore[return-value]


async def test_an_unknown_service_named_by_a_deployment_registers_by_itself(
        svc: Catalog) -> None:
    name = unique("legacy")
    dep = deployment(name)
    event = await svc.publish("deployments", "tandem.deployment.created", str(dep["id"]),
                              {"deployment": dep}, actor="ci-bot")
    service = await registered(svc, name)
    assert {k: service[k] for k in ("owner_team", "operations_team", "unowned", "tier",
                                    "lifecycle", "source")} == {
        "owner_team": None, "operations_team": None, "unowned": True, "tier": None,
        "lifecycle": None, "source": "discovered"}
    [created] = await svc.events_about(str(service["id"]))
    assert (created.type, created.actor) == ("tandem.service.created", "ci-bot")
    assert created.data["discovered_from"] == {"event_type": "tandem.deployment.created",
                                               "event_id": str(event.id),
                                               "source": "/tandem/deployments"}
    # Listed as unowned: visible, never lost.
    r = await svc.client.get("/api/v1/services", params={"unowned": "true", "limit": 200},
                             headers=svc.headers("viewer"))
    assert name in [s["name"] for s in r.json()["items"]]


async def test_it_registers_once_however_often_and_wherever_it_is_named(svc: Catalog) -> None:
    name = unique("busy")
    incident = {"id": str(uuid.uuid4()), "number": "INC0000001", "service": name,
                "environment": "production", "priority": 3, "major": False, "status": "new"}
    moved = await svc.publish("incidents", "tandem.incident.created", incident["id"],
                              {"incident": incident})
    await svc.send("incidents", moved)  # redelivered
    for _ in range(3):
        dep = deployment(name)
        await svc.publish("deployments", "tandem.deployment.created", str(dep["id"]),
                          {"deployment": dep})
    change = {"id": str(uuid.uuid4()), "number": "CHG0000001", "type": "normal",
              "service": name, "environment": "production", "status": "new"}
    await svc.publish("changes", "tandem.change.created", change["id"], {"change": change})
    service = await registered(svc, name)
    await svc.events_about(str(service["id"]))
    await asyncio.sleep(1.0)
    await svc.watcher.poll()
    assert [e.type for e in svc.watcher.events() if e.subject == service["id"]] == [
        "tandem.service.created"]
    assert service["version"] == 1


async def test_a_freeze_registers_each_service_it_names(svc: Catalog) -> None:
    names = [unique("frozen"), unique("frozen")]
    freeze = {"id": str(uuid.uuid4()), "number": "FRZ0000001", "services": names,
              "starts_at": datetime.now(UTC).isoformat(), "status": "active"}
    await svc.publish("changes", "tandem.freeze.created", freeze["id"], {"freeze": freeze})
    for name in names:
        assert (await registered(svc, name))["source"] == "discovered"


async def test_a_service_the_catalog_has_is_left_as_it_is(svc: Catalog) -> None:
    name, dev, ops = unique("pay"), unique("dev"), unique("ops")
    assert (await svc.import_yaml(descriptors(name, dev, ops))).status_code == 200
    before = await svc.get(f"/api/v1/services/{name}")
    dep = deployment(name)
    await svc.publish("deployments", "tandem.deployment.created", str(dep["id"]),
                      {"deployment": dep})
    # Wait until the consumer is past that event: a later unknown name it registers.
    marker = unique("marker")
    other = deployment(marker)
    await svc.publish("deployments", "tandem.deployment.created", str(other["id"]),
                      {"deployment": other})
    await registered(svc, marker)
    assert await svc.get(f"/api/v1/services/{name}") == before


async def test_claiming_a_discovered_service_by_import_gives_it_its_teams(svc: Catalog) -> None:
    name, dev, ops = unique("legacy"), unique("dev"), unique("ops")
    dep = deployment(name)
    await svc.publish("deployments", "tandem.deployment.created", str(dep["id"]),
                      {"deployment": dep})
    discovered = await registered(svc, name)
    r = await svc.import_yaml(descriptors(name, dev, ops))
    assert r.json()["services"]["updated"] == [name]
    claimed = await svc.get(f"/api/v1/services/{name}")
    assert (claimed["id"], claimed["owner_team"], claimed["unowned"], claimed["source"]) == (
        discovered["id"], dev, False, "import")
