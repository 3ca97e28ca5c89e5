"""Approvals by ownership over HTTP (SQLite and PostgreSQL, the catalog's events on the real
broker): a change of a tier-1 service needs a manager of its owner team and one of its
operations team; any other change any manager's, as before; an unowned service says so."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from changes_support import ChangesService, approve, create, move, unique_service, write_down

pytestmark = pytest.mark.asyncio(loop_scope="module")


def teams() -> tuple[tuple[str, list[str]], tuple[str, list[str]]]:
    tag = uuid.uuid4().hex[:6]
    return (f"dev-{tag}", [f"alice-{tag}", f"ann-{tag}"]), (f"ops-{tag}", [f"oscar-{tag}"])


async def test_a_tier_1_change_stays_in_authorize_until_the_operations_team_approves(
        svc: ChangesService) -> None:
    service = unique_service()
    dev, ops = teams()
    await write_down(svc, service, tier=1, owner=dev, operations=ops)
    change = await create(svc, "normal", service)
    rule = change["approval_rule"]
    assert (rule["kind"], rule["tier"], rule["owner_team"], rule["operations_team"]) == (
        "ownership", 1, dev[0], ops[0])
    assert [(s["side"], s["team"]) for s in rule["sides"]] == [("owner", dev[0]),
                                                              ("operations", ops[0])]
    assert (change["approvals_required"], rule["missing"]) == (2, [dev[0], ops[0]])
    await move(svc, change, "assess")

    # A manager of neither team has no say on this service's changes.
    outsider = await approve(svc, change, "carol-manager", expect=403)
    assert outsider["type"] == "urn:tandem:problem:not-on-the-owning-teams"
    assert outsider["teams"] == [dev[0], ops[0]]

    # The owner team's manager: assessed, now waiting in authorize for the operations team.
    owned = await approve(svc, change, dev[1][0])
    assert owned["status"] == "authorize"
    assert (owned["approvals_received"], owned["approvals_required"]) == (1, 2)
    assert owned["approval_rule"]["missing"] == [ops[0]]
    assert owned["approval_rule"]["sides"][0]["approved_by"] == [dev[1][0]]
    early = await move(svc, owned, "scheduled", expect=409)
    assert (early["type"], early["approvals_missing"]) == ("urn:tandem:problem:approvals-missing",
                                                          [ops[0]])
    assert f"waits for a manager of {ops[0]}" in early["detail"]
    # A second developer is not the operations team either.
    still = await approve(svc, change, dev[1][1])
    assert (still["status"], still["approval_rule"]["missing"]) == ("authorize", [ops[0]])

    scheduled = await approve(svc, change, ops[1][0])
    assert scheduled["status"] == "scheduled"
    assert scheduled["approval_rule"]["missing"] == []
    events = await svc.events_about(change["id"],
                                    lambda evs: len(evs) >= scheduled["version"])
    assert [(e.type.rsplit(".", 1)[1], e.data.get("to")) for e in events] == [
        ("created", None), ("transitioned", "assess"), ("approval_recorded", None),
        ("transitioned", "authorize"), ("approval_recorded", None),
        ("approval_recorded", None), ("transitioned", "scheduled")]
    assert events[2].data["approvals_required"] == 2


async def test_one_person_in_both_teams_approves_for_one_of_them(svc: ChangesService) -> None:
    service = unique_service()
    dev, ops = teams()
    both = dev[1][0]
    await write_down(svc, service, tier=1, owner=dev, operations=(ops[0], [*ops[1], both]))
    change = await create(svc, "emergency", service)
    await move(svc, change, "authorize")
    once = await approve(svc, change, both)
    assert once["status"] == "authorize" and once["approval_rule"]["missing"] == [ops[0]]
    assert (await approve(svc, change, ops[1][0]))["status"] == "scheduled"


async def test_an_unowned_service_says_so_and_any_manager_approves(svc: ChangesService) -> None:
    unknown = await create(svc, "normal", unique_service())
    rule = unknown["approval_rule"]
    assert (rule["kind"], rule["unowned"]) == ("managers", True)
    assert "is not in the catalog yet (unowned)" in rule["note"]
    discovered = unique_service()
    await write_down(svc, discovered, tier=None, owner=None)
    change = await create(svc, "normal", discovered)
    assert "has no owner team in the catalog (unowned)" in change["approval_rule"]["note"]
    await move(svc, change, "assess")
    assert (await approve(svc, change, "carol-manager"))["status"] == "scheduled"


async def test_a_less_critical_service_is_approved_by_any_manager(svc: ChangesService) -> None:
    service = unique_service()
    dev, ops = teams()
    await write_down(svc, service, tier=2, owner=dev, operations=ops)
    change = await create(svc, "normal", service)
    assert (change["approval_rule"]["kind"], change["approval_rule"]["unowned"]) == (
        "managers", False)
    await move(svc, change, "assess")
    assert (await approve(svc, change, "carol-manager"))["status"] == "scheduled"


async def test_without_an_operations_team_the_owner_team_approves_alone(
        svc: ChangesService) -> None:
    service = unique_service()
    dev, _ = teams()
    await write_down(svc, service, tier=1, owner=dev)
    change = await create(svc, "normal", service)
    assert "no operations team" in change["approval_rule"]["note"]
    await move(svc, change, "assess")
    assert (await approve(svc, change, dev[1][1]))["status"] == "scheduled"


async def test_a_rejection_comes_from_the_owning_teams_too(svc: ChangesService) -> None:
    service = unique_service()
    dev, ops = teams()
    await write_down(svc, service, tier=1, owner=dev, operations=ops)
    change = await create(svc, "normal", service)
    await move(svc, change, "assess")
    await approve(svc, change, "carol-manager", decision="reject", expect=403)
    rejected = await approve(svc, change, ops[1][0], decision="reject")
    assert rejected["status"] == "new" and rejected["approvals"] == []


async def test_risk_rules_see_the_services_tier(svc: ChangesService) -> None:
    service = unique_service()
    dev, ops = teams()
    await write_down(svc, service, tier=1, owner=dev, operations=ops)
    change: dict[str, Any] = await create(svc, "standard", service)
    assert (change["risk"], change["risk_rule"]) == ("high",
                                                     "production change of a tier-1 service")
    staging = await create(svc, "standard", service, environment="staging")
    assert staging["risk_rule"] != "production change of a tier-1 service"
