"""Backstage descriptor import over HTTP (SQLite and PostgreSQL, the real broker): services and
teams written down from catalog-info.yaml, a second import changing nothing, and bad documents
refused with a 422 naming the document and field, nothing of the request imported."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from catalog_support import Catalog, descriptors, unique

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_a_descriptor_import_writes_down_the_service_and_its_teams(svc: Catalog) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    r = await svc.import_yaml(descriptors(service, dev, ops))
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["documents"] == 4
    assert result["services"] == {"created": [service], "updated": [], "unchanged": []}
    assert sorted(result["teams"]["created"]) == sorted([dev, ops])
    assert result["systems"] == [f"{service}-system"] and result["changed"] is True

    imported = await svc.get(f"/api/v1/services/{service}")
    assert {k: imported[k] for k in ("name", "title", "description", "tier", "lifecycle",
                                     "owner_team", "operations_team", "unowned", "repository",
                                     "system", "runbook_url", "on_call", "source")} == {
        "name": service, "title": "Payments API", "description": "Takes card payments.",
        "tier": 1, "lifecycle": "production", "owner_team": dev, "operations_team": ops,
        "unowned": False, "repository": f"github.com/acme/{service}",
        "system": f"{service}-system", "runbook_url": f"https://runbooks.example.com/{service}",
        "on_call": "pagerduty:PABC123", "source": "import"}
    assert imported["links"] == [{"url": f"https://grafana.example.com/d/{service}",
                                  "title": "Dashboard"}]
    assert imported["number"].startswith("SVC") and imported["version"] == 1
    developers = await svc.get(f"/api/v1/teams/{dev}")
    assert (developers["members"], developers["title"]) == (["alice", "ann"],
                                                            "Payments developers")
    operations = await svc.get(f"/api/v1/teams/{ops}")
    assert (operations["members"], operations["title"]) == (["olga", "oscar"],
                                                            "Payments operations")
    # Each entry is a fact on the catalog's topic, carrying its snapshot.
    created = await svc.events_about(imported["id"])
    assert [(e.type, e.sequence) for e in created] == [("tandem.service.created", 1)]
    assert created[0].data["service"]["operations_team"] == ops
    team_events = await svc.events_about(operations["id"])
    assert team_events[0].type == "tandem.team.created"
    assert team_events[0].data["team"]["members"] == ["olga", "oscar"]


async def test_importing_the_same_descriptors_again_changes_nothing(svc: Catalog) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    text = descriptors(service, dev, ops)
    assert (await svc.import_yaml(text)).status_code == 200
    before = {name: await svc.get(path) for name, path in (
        ("service", f"/api/v1/services/{service}"), ("dev", f"/api/v1/teams/{dev}"),
        ("ops", f"/api/v1/teams/{ops}"))}
    again = await svc.import_yaml(text)
    assert again.status_code == 200, again.text
    result = again.json()
    assert result["changed"] is False
    assert result["services"] == {"created": [], "updated": [], "unchanged": [service]}
    assert result["teams"]["created"] == result["teams"]["updated"] == []
    for name, path in (("service", f"/api/v1/services/{service}"),
                       ("dev", f"/api/v1/teams/{dev}"), ("ops", f"/api/v1/teams/{ops}")):
        assert await svc.get(path) == before[name], f"{name} changed on a second import"
    # Nothing was published either: one created event each, and no more.
    subjects = {before[k]["id"] for k in before}

    def published(events: list[Any]) -> list[str]:
        return sorted(e.type for e in events if e.subject in subjects)

    await svc.watcher.wait_for(lambda evs: len(published(evs)) >= 3)
    await asyncio.sleep(0.5)
    await svc.watcher.poll()
    assert published(svc.watcher.events()) == [
        "tandem.service.created", "tandem.team.created", "tandem.team.created"]


async def test_a_changed_descriptor_updates_what_changed_and_says_so(svc: Catalog) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    assert (await svc.import_yaml(descriptors(service, dev, ops))).status_code == 200
    changed = await svc.import_yaml(descriptors(service, dev, ops, tier=2,
                                                members=(["alice"], ["oscar", "olga"])))
    assert changed.status_code == 200, changed.text
    result = changed.json()
    assert result["services"]["updated"] == [service]
    assert result["teams"]["updated"] == [dev] and result["teams"]["unchanged"] == [ops]
    stored = await svc.get(f"/api/v1/services/{service}")
    assert (stored["tier"], stored["version"]) == (2, 2)
    events = await svc.events_about(stored["id"], lambda evs: len(evs) >= 2)
    assert events[1].type == "tandem.service.updated"
    assert events[1].data["changes"] == {"tier": [1, 2]}
    team = await svc.get(f"/api/v1/teams/{dev}")
    assert team["members"] == ["alice"]


async def test_an_owner_no_group_describes_becomes_a_team_with_no_members(svc: Catalog) -> None:
    service, owners = unique("web"), unique("owners")
    r = await svc.import_yaml(f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {service}
spec:
  type: website
  lifecycle: experimental
  owner: group:{owners}
""")
    assert r.status_code == 200, r.text
    assert r.json()["teams"]["created"] == [owners]
    team = await svc.get(f"/api/v1/teams/{owners}")
    assert (team["members"], team["source"]) == ([], "named")
    stored = await svc.get(f"/api/v1/services/{service}")
    assert (stored["owner_team"], stored["operations_team"], stored["tier"]) == (owners, None,
                                                                                 None)
    # Described later, the team takes its members; naming it again never empties it.
    described = await svc.import_yaml(f"""\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {{name: {owners}}}
spec: {{type: team, members: [dana]}}
""")
    assert described.json()["teams"]["updated"] == [owners]
    again = await svc.import_yaml(r.request.content.decode())
    assert again.json()["teams"]["unchanged"] == [owners]
    assert (await svc.get(f"/api/v1/teams/{owners}"))["members"] == ["dana"]


async def test_users_and_child_groups_make_members(svc: Catalog) -> None:
    parent, child, lone = unique("org"), unique("sre"), unique("lone")
    r = await svc.import_yaml(f"""\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {{name: {parent}}}
spec: {{type: department, members: [pia], children: [group:default/{child}]}}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {{name: {child}}}
spec: {{type: team, members: [sam]}}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {{name: una}}
spec: {{memberOf: [{child}, {lone}]}}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata: {{name: payments-api}}
spec: {{type: openapi, lifecycle: production, owner: {child}, definition: "openapi: 3.0.0"}}
""")
    assert r.status_code == 200, r.text
    assert r.json()["ignored"] == [{"document": 4, "kind": "API", "name": "payments-api"}]
    assert (await svc.get(f"/api/v1/teams/{child}"))["members"] == ["sam", "una"]
    assert (await svc.get(f"/api/v1/teams/{parent}"))["members"] == ["pia", "sam", "una"]
    assert (await svc.get(f"/api/v1/teams/{lone}"))["members"] == ["una"]


def _problem(r: object) -> dict:  # type: ignore[type-arg]
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert r.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["type"] == "urn:tandem:problem:descriptor-invalid"
    assert "nothing was imported" in body["detail"]
    return body  # type: ignore[no-any-return]


async def _absent(svc: Catalog, *paths: str) -> None:
    for path in paths:
        r = await svc.client.get(path, headers=svc.headers("viewer"))
        assert r.status_code == 404, f"{path} was imported from a refused request"


async def test_yaml_that_does_not_parse_is_refused_and_nothing_is_imported(svc: Catalog) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    broken = descriptors(service, dev, ops) + "---\nkind: Component\nmetadata: {name: [x\n"
    body = _problem(await svc.import_yaml(broken))
    [error] = body["errors"]
    assert error["document"] == 5 and error["field"] == ""
    assert "not valid YAML (line" in error["message"]
    await _absent(svc, f"/api/v1/services/{service}", f"/api/v1/teams/{dev}",
                  f"/api/v1/teams/{ops}")


async def test_a_kind_that_is_not_backstages_is_refused_naming_document_and_field(
        svc: Catalog) -> None:
    service, dev, ops = unique("pay"), unique("dev"), unique("ops")
    text = descriptors(service, dev, ops) + (
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: payments}\n")
    body = _problem(await svc.import_yaml(text))
    assert {(e["document"], e["name"], e["field"]) for e in body["errors"]} == {
        (5, "payments", "apiVersion"), (5, "payments", "kind")}
    assert "Deployment is not a Backstage kind" in body["detail"]
    await _absent(svc, f"/api/v1/services/{service}", f"/api/v1/teams/{dev}")


@pytest.mark.parametrize(("field", "document"), [
    ("metadata.name", "metadata: {name: Payments_API}\nspec: {lifecycle: production, owner: t}"),
    ("metadata.name", f"metadata: {{name: {'a' * 64}}}\nspec: {{lifecycle: production, owner: t}}"),
    ("spec.owner", "metadata: {name: pay}\nspec: {lifecycle: production, owner: 'group:Ops Team'}"),
    ("spec.owner", "metadata: {name: pay}\nspec: {lifecycle: production, owner: user:alice}"),
    ("spec.owner", "metadata: {name: pay}\nspec: {lifecycle: production}"),
    ("spec.lifecycle", "metadata: {name: pay}\nspec: {lifecycle: retired, owner: t}"),
    ("metadata.annotations.tandem.dev/tier",
     "metadata: {name: pay, annotations: {tandem.dev/tier: '5'}}\n"
     "spec: {lifecycle: production, owner: t}"),
    ("metadata.annotations.tandem.dev/operations-team",
     "metadata: {name: pay, annotations: {tandem.dev/operations-team: 'Ops!'}}\n"
     "spec: {lifecycle: production, owner: t}"),
    ("metadata.links[0].url",
     "metadata: {name: pay, links: [{url: 'ftp://x'}]}\nspec: {lifecycle: production, owner: t}"),
])
async def test_bad_names_and_fields_are_refused_naming_document_and_field(
        svc: Catalog, field: str, document: str) -> None:
    team = unique("team")
    text = (f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: {team}}}\n"
            f"spec: {{type: team}}\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
            f"{document}\n")
    body = _problem(await svc.import_yaml(text))
    assert [(e["document"], e["field"]) for e in body["errors"]] == [(2, field)], body
    await _absent(svc, f"/api/v1/teams/{team}")


async def test_every_problem_of_a_request_is_named_at_once(svc: Catalog) -> None:
    text = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: one}
spec: {lifecycle: production}
---
just a string
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: one}
spec: {lifecycle: production, owner: x}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: one}
spec: {lifecycle: production, owner: x}
"""
    body = _problem(await svc.import_yaml(text))
    assert [(e["document"], e["field"]) for e in body["errors"]] == [
        (1, "spec.owner"), (2, ""), (4, "metadata.name")]
    assert body["errors"][2]["message"] == "Component one is already described by document 3"


async def test_aliases_and_text_no_service_can_store_are_refused(svc: Catalog) -> None:
    aliased = ("apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: &m {name: aliased}\n"
               "spec: {members: [a]}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\n"
               "metadata: *m\n")
    assert "anchors and aliases" in _problem(await svc.import_yaml(aliased))["errors"][0][
        "message"]
    nul = ('apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: nul, title: "a\\0b"}'
           "\n")
    assert _problem(await svc.import_yaml(nul))["errors"][0]["field"] == "metadata.title"
    not_utf8 = await svc.client.post("/api/v1/catalog/import", content=b"kind: \xff\xfe",
                                     headers=svc.headers())
    assert _problem(not_utf8)["errors"][0]["message"] == "the body is not UTF-8 text"
    control = _problem(await svc.import_yaml("kind: \x1f"))
    assert "special characters are not allowed" in control["errors"][0]["message"]
    deep = _problem(await svc.import_yaml("[" * 100_000))
    assert deep["errors"][0]["message"] == "nested too deeply to be a descriptor"


async def test_only_an_owner_imports(svc: Catalog) -> None:
    text = descriptors(unique("pay"), unique("dev"), unique("ops"))
    assert (await svc.client.post("/api/v1/catalog/import", content=text)).status_code == 401
    for role in ("viewer", "practitioner", "manager", "pipeline"):
        assert (await svc.import_yaml(text, role=role)).status_code == 403, role


async def test_a_retried_import_with_its_key_replays_the_first_answer(svc: Catalog) -> None:
    text = descriptors(unique("pay"), unique("dev"), unique("ops"))
    first = await svc.import_yaml(text, **{"Idempotency-Key": unique("key")})
    key = first.request.headers["idempotency-key"]
    again = await svc.import_yaml(text, **{"Idempotency-Key": key})
    assert (again.status_code, again.json()) == (200, first.json())
    assert again.headers["idempotent-replayed"] == "true"
    other = await svc.import_yaml(text + "\n# edited\n", **{"Idempotency-Key": key})
    assert other.status_code == 422


async def test_a_document_with_a_bad_name_still_has_its_other_fields_checked(
        svc: Catalog) -> None:
    body = _problem(await svc.import_yaml(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: Billing_API}\n"
        "spec: {type: service, lifecycle: retired, owner: 'group:Billing Team'}\n"))
    assert [(e["name"], e["field"]) for e in body["errors"]] == [
        ("Billing_API", "metadata.name"), ("Billing_API", "spec.lifecycle"),
        ("Billing_API", "spec.owner")]
