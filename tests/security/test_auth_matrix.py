"""Every route of every service x every role and every kind of bad token: 401, 403 or allowed,
as the contract's role table says (section 2)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import jwt
import pytest
from apps_under_test import Running
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tandem.auth import Role, authenticate, mint_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVERYONE = frozenset(Role)
#: Routes that answer without a token: health, metrics, docs, the board's pages (no data in
#: them), the monitor ingest (it authenticates by routing key) and the board's sign-in (it is
#: how a person gets a token).
PUBLIC = {"/livez", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc", "/", "/value-stream", "/v2/enqueue", "/login", "/auth/callback",
          "/auth/session", "/logout",
          # The senders' own proofs instead of a token: a routing key (PagerDuty), a signature
          # (GitHub), a secret token (GitLab); tests/wall/test_integrations_in.py refuses
          # bad ones with 401.
          "/v2/change/enqueue", "/integrations/github", "/integrations/gitlab"}

#: The contract's role table for the routes that matter most, asserted as written there.
CONTRACT = {
    ("incidents", "POST", "/api/v1/incidents"): {"practitioner", "manager", "owner"},
    ("incidents", "PATCH", "/api/v1/incidents/{ref}"): {"practitioner", "manager", "owner"},
    ("incidents", "POST", "/api/v1/incidents/{ref}/transitions"):
        {"practitioner", "manager", "owner"},
    ("incidents", "POST", "/api/v1/incidents/{ref}/notes"): {"practitioner", "manager", "owner"},
    ("incidents", "POST", "/api/v1/incidents/{ref}/cause"): {"manager", "owner"},
    ("incidents", "PATCH", "/api/v1/incident-policy"): {"owner"},
    ("incidents", "GET", "/api/v1/incidents"): set(EVERYONE),
    ("incidents", "GET", "/api/v1/incidents/{ref}/timeline"): set(EVERYONE),
    ("changes", "POST", "/api/v1/changes"): {"practitioner", "manager", "owner", "pipeline"},
    ("changes", "POST", "/api/v1/changes/{ref}/approvals"): {"manager", "owner"},
    ("changes", "POST", "/api/v1/freezes"): {"manager", "owner"},
    ("changes", "POST", "/api/v1/freezes/{ref}/transitions"): {"manager", "owner"},
    ("changes", "GET", "/api/v1/changes"): set(EVERYONE),
    ("changes", "GET", "/api/v1/calendar"): set(EVERYONE),
    ("deployments", "POST", "/api/v1/deployments"): {"pipeline"},
    ("deployments", "POST", "/api/v1/deployments/{ref}/transitions"): {"pipeline"},
    ("deployments", "GET", "/api/v1/deployments/{ref}/gate"): set(EVERYONE),
    ("deployments", "GET", "/api/v1/dora"): set(EVERYONE),
    ("dashboard", "GET", "/api/v1/board"): set(EVERYONE),
    ("catalog", "POST", "/api/v1/catalog/import"): {"owner"},
    ("catalog", "POST", "/api/v1/services"): {"owner"},
    ("catalog", "PATCH", "/api/v1/teams/{ref}"): {"owner"},
    ("catalog", "GET", "/api/v1/services"): set(EVERYONE),
    ("changes", "POST", "/api/v1/standard-changes"): {"owner"},
    ("dashboard", "GET", "/api/v1/stream"): set(EVERYONE),
    ("notifier", "POST", "/api/v1/subscriptions"): {"manager", "owner"},
    ("notifier", "PATCH", "/api/v1/subscriptions/{ref}"): {"manager", "owner"},
    ("notifier", "POST", "/api/v1/subscriptions/{ref}/transitions"): {"manager", "owner"},
    ("notifier", "POST", "/api/v1/deliveries/{delivery_id}/redeliver"): {"manager", "owner"},
    ("notifier", "GET", "/api/v1/deliveries"): set(EVERYONE),
    ("notifier", "GET", "/api/v1/subscriptions"): set(EVERYONE),
}


def required_roles(dependant: Dependant) -> frozenset[Role] | None:
    """The roles a route's dependencies admit: from ``require(...)``'s closure, or every role
    for a dependency that only authenticates; None when nothing asks for a token."""
    found: list[frozenset[Role]] = []

    def walk(dep: Dependant) -> None:
        call = dep.call
        for cell in getattr(call, "__closure__", None) or ():
            value = cell.cell_contents
            if isinstance(value, frozenset) and value and all(isinstance(r, Role) for r in value):
                found.append(value)
        if call is authenticate or getattr(call, "__name__", "") == "viewer":
            found.append(EVERYONE)
        for sub in dep.dependencies:
            walk(sub)

    walk(dependant)
    if not found:
        return None
    return frozenset.intersection(*found)


def api_routes(svc: Running) -> list[tuple[str, str, Dependant | None]]:
    """(method, full path template, dependant) of every route the app serves, docs included.

    Included routers are walked through their effective routes, so prefixes are applied."""
    out: list[tuple[str, str, Dependant | None]] = []

    def add(route: object, path: str) -> None:
        dependant = route.dependant if isinstance(route, APIRoute) else None
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, path, dependant))

    for route in svc.app.routes:
        if hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                add(context.original_route, context.path)
        elif hasattr(route, "path"):
            add(route, route.path)
    return out


def concrete(path: str) -> str:
    """A path template with every parameter filled by a fresh, unknown id."""
    parts = []
    for part in path.split("/"):
        parts.append(str(uuid.uuid4()) if part.startswith("{") else part)
    return "/".join(parts)


async def status_of(svc: Running, method: str, path: str, headers: dict[str, str]) -> int:
    """The response status; for an endless stream, the status of its first message."""
    if path.endswith("/stream"):
        return await _first_status(svc, method, path, headers)
    response = await svc.client.request(method, path, headers=headers)
    assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
    return response.status_code


async def _first_status(svc: Running, method: str, path: str, headers: dict[str, str]) -> int:
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "server": ("tandem.test", 80),
             "client": ("127.0.0.1", 1),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    disconnect = asyncio.Event()

    async def receive() -> dict[str, object]:
        if not getattr(receive, "sent", False):
            receive.sent = True  # type: ignore[attr-defined]
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(int(message["status"]))  # type: ignore[call-overload]

    task = asyncio.create_task(svc.app(scope, receive, send))
    try:
        return await asyncio.wait_for(started, 10)
    finally:
        disconnect.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def bad_credentials(svc: Running) -> dict[str, dict[str, str]]:
    """Every way a request can be unauthenticated: each must answer 401."""
    secret = svc.platform.jwt_secret
    expired = svc.token("owner", ttl=timedelta(seconds=-30))
    forged = mint_token("not-the-" + secret, sub="mallory", role="owner", ttl=timedelta(hours=1))
    header, _claims, signature = svc.token("owner").split(".")
    tampered = ".".join([header, jwt.utils.base64url_encode(
        b'{"sub":"mallory","role":"owner","exp":9999999999}').decode(), signature])
    unsigned = jwt.encode({"sub": "mallory", "role": "owner", "exp": 9999999999}, None,
                          algorithm="none")
    no_role = jwt.encode({"sub": "x", "exp": 9999999999}, secret, algorithm="HS256")
    odd_role = jwt.encode({"sub": "x", "role": "admin", "exp": 9999999999}, secret,
                          algorithm="HS256")
    no_expiry = jwt.encode({"sub": "x", "role": "owner"}, secret, algorithm="HS256")
    return {
        "none": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "bad signature": {"Authorization": f"Bearer {forged}"},
        "tampered claims": {"Authorization": f"Bearer {tampered}"},
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "malformed": {"Authorization": "Bearer not.a.token"},
        "empty bearer": {"Authorization": "Bearer "},
        "basic scheme": {"Authorization": "Basic b3duZXI6b3duZXI="},
        "no role claim": {"Authorization": f"Bearer {no_role}"},
        "unknown role": {"Authorization": f"Bearer {odd_role}"},
        "no expiry": {"Authorization": f"Bearer {no_expiry}"},
    }


async def test_every_route_answers_each_role_and_bad_token_per_the_role_table(
        service: Running) -> None:
    checked = 0
    protected = 0
    seen_contract = set()
    bad = bad_credentials(service)
    for method, path, dependant in api_routes(service):
        roles = required_roles(dependant) if dependant is not None else None
        key = (service.name, method, path)
        if key in CONTRACT:
            seen_contract.add(key)
            assert roles is not None and {r.value for r in roles} == CONTRACT[key], key
        if roles is None:
            assert path in PUBLIC, f"{method} {path} asks for no token"
            continue
        protected += 1
        target = concrete(path)
        for kind, headers in bad.items():
            status = await status_of(service, method, target, headers)
            assert status == 401, (method, path, kind, status)
            checked += 1
        for role in Role:
            status = await status_of(service, method, target, service.headers(role))
            if role in roles:
                assert status not in (401, 403), (method, path, role, status)
            else:
                assert status == 403, (method, path, role, status)
            checked += 1
    assert seen_contract == {k for k in CONTRACT if k[0] == service.name}
    assert protected >= 2 and checked >= protected * 16


async def test_denials_are_problems_that_say_why(service: Running) -> None:
    path = {"incidents": "/api/v1/incidents", "changes": "/api/v1/freezes",
            "deployments": "/api/v1/deployments", "dashboard": "/api/v1/board",
            "catalog": "/api/v1/teams", "notifier": "/api/v1/subscriptions"}[service.name]
    anonymous = await service.client.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["status"] == 401
    if service.name != "dashboard":
        denied = await service.client.post(path, json={}, headers=service.headers("viewer"))
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
        assert "viewer" in denied.json()["detail"]


async def test_the_query_token_of_the_board_is_checked_like_a_header(service: Running) -> None:
    if service.name != "dashboard":
        # Only the board (for EventSource) reads ?access_token=; elsewhere it opens nothing.
        valid = service.token("owner")
        path = {"incidents": "/api/v1/incidents", "changes": "/api/v1/changes",
                "deployments": "/api/v1/deployments", "catalog": "/api/v1/services",
                "notifier": "/api/v1/subscriptions"}[
            service.name]
        r = await service.client.get(path, params={"access_token": valid})
        assert r.status_code == 401
        return
    forged = mint_token("another-secret-of-enough-length-0123456789", sub="m", role="viewer",
                        ttl=timedelta(hours=1))
    expired = service.token("viewer", ttl=timedelta(seconds=-30))
    for token in (forged, expired, "garbage"):
        r = await service.client.get("/api/v1/board", params={"access_token": token})
        assert r.status_code == 401, token
    ok = await service.client.get("/api/v1/board",
                                  params={"access_token": service.token("viewer")})
    assert ok.status_code == 200
