"""The deployments service on the catalog and the standard change catalog (SQLite and
PostgreSQL, events on the real broker): a standard change outside a template never authorizes
a deploy, one recorded from a template does, and DORA takes ``team=``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from deployments_support import Stack, change_of, service_name

from deployments.models import ChangeView, ServiceView

pytestmark = pytest.mark.asyncio(loop_scope="module")


def codes(gate: dict[str, Any]) -> list[str]:
    return [r["code"] for r in gate["reasons"]]


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_a_standard_change_outside_a_template_never_authorizes_a_deploy(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    own = change_of(svc, "scheduled", type_="standard")
    await stack.change(own)
    await stack.projected(ChangeView, own["id"])
    dep = await stack.deploy(svc, change_id=str(own["id"]))
    assert (dep["gate"]["decision"], codes(dep["gate"])) == ("prevented",
                                                             ["change_outside_template"])
    assert "not recorded from a standard change template" in dep["gate"]["reasons"][0][
        "message"]
    # The same change recorded from a template is pre-authorized.
    templated = {**change_of(svc, "scheduled", type_="standard"),
                 "template_id": str(uuid.uuid4())}
    await stack.change(templated)
    await stack.projected(ChangeView, templated["id"], lambda row: row.template_id is not None)
    allowed = await stack.deploy(svc, change_id=str(templated["id"]))
    assert (allowed["gate"]["decision"], codes(allowed["gate"])) == ("allowed",
                                                                     ["change_covers"])


@pytest.mark.parametrize("gate_mode", ["receipt"], indirect=True)
async def test_in_receipt_mode_the_outside_change_is_not_what_allows_it(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    own = change_of(svc, "implement", type_="standard")
    await stack.change(own)
    await stack.projected(ChangeView, own["id"])
    dep = await stack.deploy(svc, change_id=str(own["id"]))
    assert (dep["gate"]["decision"], codes(dep["gate"])) == (
        "allowed", ["change_outside_template", "receipt_allowed"])


async def test_dora_by_team_counts_the_services_the_team_owns_or_runs(
        stack: Stack, gate_mode: object) -> None:
    team = f"team-{uuid.uuid4().hex[:6]}"
    ours, operated, theirs = service_name(), service_name(), service_name()
    for name, owner, ops in ((ours, team, None), (operated, "others", team),
                             (theirs, "others", "others")):
        subject = uuid.uuid4()
        await stack.publish("catalog", "tandem.service.created", subject, {"service": {
            "id": str(subject), "name": name, "owner_team": owner, "operations_team": ops,
            "tier": 2}})
        await stack.projected(ServiceView, subject)
    for name in (ours, operated, theirs):
        dep = await stack.deploy(name)
        for to in ("in_progress", "succeeded"):
            r = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                        json={"to": to}, headers=stack.headers())
            assert r.status_code == 200, r.text
    r = await stack.client.get("/api/v1/dora", params={"team": team},
                               headers=stack.headers("viewer"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["team"], report["services"]) == (team, sorted([ours, operated]))
    assert report["metrics"]["deployment_frequency"]["sample_size"] == 2
    nobody = await stack.client.get("/api/v1/dora", params={"team": "no-such-team"},
                                    headers=stack.headers("viewer"))
    assert nobody.json()["metrics"]["deployment_frequency"]["sample_size"] == 0
