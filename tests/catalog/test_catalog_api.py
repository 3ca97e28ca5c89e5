"""The catalog's services and teams over HTTP (SQLite and PostgreSQL): written down by owners,
read by anyone, found by id, number or name, edited with If-Match, filtered by their fields."""

from __future__ import annotations

from typing import Any

import pytest
from catalog_support import Catalog, unique

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def team(svc: Catalog, **fields: Any) -> dict[str, Any]:
    r = await svc.client.post("/api/v1/teams", json={"name": unique("team"), **fields},
                              headers=svc.headers())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def service(svc: Catalog, **fields: Any) -> dict[str, Any]:
    r = await svc.client.post("/api/v1/services", json={"name": unique("svc"), **fields},
                              headers=svc.headers())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_service_is_written_down_with_its_teams_and_found_by_name(svc: Catalog) -> None:
    dev = await team(svc, title="Checkout developers", members=["user:default/ada", "bo"])
    ops = await team(svc, members=["cy"], notify={"url": "https://hooks.example.com/x",
                                                  "format": "slack"})
    assert dev["members"] == ["ada", "bo"] and ops["notify"]["format"] == "slack"
    created = await service(svc, title="Checkout", tier=2, lifecycle="production",
                            owner_team=dev["name"], operations_team=ops["name"],
                            repository="github.com/acme/checkout",
                            links=[{"url": "https://wiki.example.com/checkout"}])
    r = await svc.client.get(f"/api/v1/services/{created['name']}",
                             headers=svc.headers("viewer"))
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert r.headers.get("location") is None
    for ref in (created["id"], created["number"], created["number"].lower()):
        assert (await svc.get(f"/api/v1/services/{ref}"))["id"] == created["id"]
    assert (await svc.get(f"/api/v1/teams/{dev['name']}"))["id"] == dev["id"]
    assert (created["unowned"], created["source"]) == (False, "api")
    events = await svc.events_about(created["id"])
    assert events[0].type == "tandem.service.created"


async def test_refusals_name_what_is_wrong(svc: Catalog) -> None:
    known = await team(svc)
    r = await svc.client.post("/api/v1/services", headers=svc.headers(),
                              json={"name": unique(), "owner_team": "no-such-team"})
    assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "owner_team")
    assert r.json()["type"] == "urn:tandem:problem:team-unknown"
    for bad in ("Checkout", "two--hyphens", "-lead", "x" * 64, "with.dot"):
        r = await svc.client.post("/api/v1/services", json={"name": bad},
                                  headers=svc.headers())
        assert (r.status_code, r.json()["errors"][0]["field"]) == (422, "name"), bad
    existing = await service(svc, owner_team=known["name"])
    again = await svc.client.post("/api/v1/services", json={"name": existing["name"]},
                                  headers=svc.headers())
    assert again.status_code == 409
    assert again.json()["existing"] == existing["number"]
    dup = await svc.client.post("/api/v1/teams", json={"name": known["name"]},
                                headers=svc.headers())
    assert (dup.status_code, dup.json()["type"]) == (409, "urn:tandem:problem:team-exists")
    r = await svc.client.post("/api/v1/services", json={"name": unique(), "tier": 5},
                              headers=svc.headers())
    assert r.status_code == 422
    missing = await svc.client.get("/api/v1/services/no-such-service",
                                   headers=svc.headers("viewer"))
    assert missing.status_code == 404


async def test_only_owners_write_the_catalog(svc: Catalog) -> None:
    for role in ("viewer", "practitioner", "manager", "pipeline"):
        r = await svc.client.post("/api/v1/teams", json={"name": unique()},
                                  headers=svc.headers(role))
        assert r.status_code == 403, role
    assert (await svc.client.get("/api/v1/services")).status_code == 401


async def test_an_edit_with_a_stale_if_match_is_refused_and_the_name_never_changes(
        svc: Catalog) -> None:
    ops = await team(svc)
    created = await service(svc)
    path = f"/api/v1/services/{created['id']}"
    r = await svc.client.patch(path, json={"operations_team": ops["name"], "tier": 1},
                               headers={**svc.headers(), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert (r.json()["operations_team"], r.json()["version"]) == (ops["name"], 2)
    stale = await svc.client.patch(path, json={"tier": 3},
                                   headers={**svc.headers(), "If-Match": '"1"'})
    assert stale.status_code == 412
    renamed = await svc.client.patch(path, json={"name": "other"}, headers=svc.headers())
    assert renamed.status_code == 422
    same = await svc.client.patch(path, json={"tier": 1}, headers=svc.headers())
    assert same.json()["version"] == 2, "an edit that changes nothing is no event"
    events = await svc.events_about(created["id"], lambda evs: len(evs) >= 2)
    assert events[1].data["changes"] == {"operations_team": [None, ops["name"]], "tier": [None, 1]}
    members = await svc.client.patch(f"/api/v1/teams/{ops['name']}", headers=svc.headers(),
                                     json={"members": ["zed", "amy", "zed"]})
    assert members.json()["members"] == ["amy", "zed"]


async def test_lists_filter_by_team_tier_and_ownership(svc: Catalog) -> None:
    dev, ops = await team(svc, members=["kim"]), await team(svc)
    owned = await service(svc, owner_team=dev["name"], tier=1)
    operated = await service(svc, owner_team=dev["name"], operations_team=ops["name"], tier=3)
    lonely = await service(svc)

    async def names(**params: Any) -> list[str]:
        r = await svc.client.get("/api/v1/services", params=params,
                                 headers=svc.headers("viewer"))
        assert r.status_code == 200, r.text
        return [s["name"] for s in r.json()["items"]]

    assert await names(team=dev["name"]) == [operated["name"], owned["name"]]
    assert await names(team=ops["name"]) == [operated["name"]]
    assert await names(operations_team=ops["name"], tier=3) == [operated["name"]]
    assert lonely["name"] in await names(unowned="true", limit=200)
    assert lonely["name"] not in await names(unowned="false", limit=200)
    teams = await svc.client.get("/api/v1/teams", params={"member": "kim"},
                                 headers=svc.headers("viewer"))
    assert [t["name"] for t in teams.json()["items"]] == [dev["name"]]
