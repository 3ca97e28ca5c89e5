"""The subscription API (contract section 8): bad input is a 422 naming the field, private and
link-local receivers are refused (no server-side request forgery), roles guard writes, and a
team's ``notify`` in the catalog is a subscription that hears its services' facts."""

from __future__ import annotations

from typing import Any

import pytest
from notifier_support import Stack, receiver, unique

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize(("body", "field"), [
    ({"url": "ftp://example.com/hook"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "https://10.0.0.7/hook"}, "url"),
    ({"url": "https://169.254.169.254/latest/meta-data"}, "url"),
    ({"url": "https://[fe80::1]/hook"}, "url"),
    ({"url": "https://[::ffff:192.168.1.1]/hook"}, "url"),
    ({"url": "http://93.184.216.34/hook"}, "url"),
    ({"url": "https://93.184.216.34/hook", "types": ["tandem.incident.exploded"]}, "types"),
    ({"url": "https://93.184.216.34/hook", "types": ["tandem.nothing.*"]}, "types"),
    ({"url": "https://93.184.216.34/hook", "format": "teams"}, "format"),
    ({"url": "https://93.184.216.34/hook", "services": ["Not A Slug"]}, "services"),
    ({"url": "https://93.184.216.34/hook", "min_priority": 0}, "min_priority"),
    ({"url": "https://93.184.216.34/hook", "teams": [""]}, "teams"),
    ({"url": "https://93.184.216.34/hook", "color": "red"}, "color"),
])
async def test_bad_input_is_a_problem_naming_the_field(stack: Stack, body: dict[str, Any],
                                                       field: str) -> None:
    r = await stack.clients["notifier"].post("/api/v1/subscriptions", json=body,
                                             headers=stack.headers("manager"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


async def test_a_public_https_receiver_is_accepted_and_its_secret_shown_once(
        stack: Stack) -> None:
    created = await stack.subscribe("https://93.184.216.34/hook", format="slack",
                                    types=["tandem.incident.*", "tandem.deployment.transitioned"],
                                    min_priority=2)
    assert created["number"].startswith("SUB")
    assert created["status"] == "active" and created["allowed_transitions"] == ["disabled"]
    assert created["secret"].startswith("whsec_")
    listed = await stack.call("notifier", "GET", "/api/v1/subscriptions", role="viewer",
                              params={"format": "slack"})
    assert created["id"] in {s["id"] for s in listed["items"]}
    assert all("secret" not in s for s in listed["items"])
    edited = await stack.call("notifier", "PATCH", f"/api/v1/subscriptions/{created['id']}",
                              json={"min_priority": None}, headers={"If-Match": '"1"'})
    assert edited["min_priority"] is None and edited["version"] == 2
    stale = await stack.clients["notifier"].patch(
        f"/api/v1/subscriptions/{created['id']}", json={"description": "x"},
        headers={**stack.headers("manager"), "If-Match": '"1"'})
    assert stale.status_code == 412
    refused = await stack.clients["notifier"].patch(
        f"/api/v1/subscriptions/{created['id']}", json={"url": "https://192.168.0.1/"},
        headers=stack.headers("manager"))
    assert refused.status_code == 422 and "url" in refused.text


async def test_roles_guard_subscribing(stack: Stack) -> None:
    client = stack.clients["notifier"]
    body = {"url": "https://93.184.216.34/hook"}
    assert (await client.post("/api/v1/subscriptions", json=body)).status_code == 401
    r = await client.post("/api/v1/subscriptions", json=body,
                          headers=stack.headers("practitioner"))
    assert r.status_code == 403
    r = await client.get("/api/v1/deliveries", headers=stack.headers("viewer"))
    assert r.status_code == 200


async def test_a_teams_notify_in_the_catalog_hears_its_services_facts(stack: Stack) -> None:
    team, service = unique("ops"), unique("pay")
    async with receiver() as chat, receiver() as witness:
        # The catalog and the incidents topic are read in no order between them: an incident
        # raised before the notifier has heard of its service cannot be told to be the team's.
        # A subscription to the service's own creation shows when the notifier has heard it.
        await stack.subscribe(witness.url, types=["tandem.service.created"], services=[service])
        await stack.call("catalog", "POST", "/api/v1/teams", role="owner", expect=201,
                         json={"name": team, "members": ["olga"],
                               "notify": {"url": chat.url, "format": "slack"}})
        await stack.call("catalog", "POST", "/api/v1/services", role="owner", expect=201,
                         json={"name": service, "operations_team": team})
        subs = await eventually(lambda: _team_subscriptions(stack, team))
        assert subs[0]["format"] == "slack" and subs[0]["teams"] == [team]
        assert subs[0]["source"] == "catalog"
        # The team's subscription follows the catalog, not a PATCH.
        r = await stack.clients["notifier"].patch(
            f"/api/v1/subscriptions/{subs[0]['id']}", json={"description": "mine"},
            headers=stack.headers("manager"))
        assert r.status_code == 409
        await eventually(lambda: witness.requests)
        incident = await stack.incident(service)
        await eventually(lambda: [r for r in chat.requests
                                  if incident["number"] in r.json()["text"]], timeout=20)
        await stack.call("catalog", "PATCH", f"/api/v1/teams/{team}", role="owner",
                         json={"notify": None})
        await eventually(lambda: _team_subscriptions(stack, team, "disabled"))


async def _team_subscriptions(stack: Stack, team: str,
                              status: str = "active") -> list[dict[str, Any]]:
    page = await stack.call("notifier", "GET", "/api/v1/subscriptions", role="viewer",
                            params={"team": team, "status": status})
    return page["items"]  # type: ignore[no-any-return]
