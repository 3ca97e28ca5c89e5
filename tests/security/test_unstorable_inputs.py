"""Input no service can store is a 422 naming the field, never a 500, on every service and both
databases: non-finite and overflowing numbers, unpaired surrogates and NUL characters in bodies,
query parameters and paths; a well-formed cursor holding a naive time is a 400; a token whose
``sub`` cannot name an actor is a 401. The keep-alive connection survives each refusal.

Hypothesis draws the bodies: a valid create of each service with one field replaced by an
unstorable JSON token.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import orjson
import pytest
from apps_under_test import Running
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tandem.auth import mint_token

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: JSON tokens no database column or event can hold (Python's parser accepts every one).
NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "123e4567"]
#: JSON string literals: an unpaired surrogate, NUL, both inside ordinary text.
TEXTS = ['"\\ud800"', '"abc\\udfff"', '"\\udbff x"', '"a\\u0000b"', '"\\u0000"',
         '"ok \\ud83d"']

_PLACEHOLDER = "__unstorable__"


def create_body(name: str) -> tuple[str, dict[str, Any], str]:
    """A valid create of service ``name``: (path, body, role)."""
    now = datetime.now(UTC)
    if name == "incidents":
        return "/api/v1/incidents", {"title": "t", "description": "d", "service": "inputs",
                                     "environment": "production", "impact": 3,
                                     "urgency": 3}, "practitioner"
    if name == "changes":
        return "/api/v1/changes", {"type": "normal", "title": "t", "description": "d",
                                   "service": "inputs", "environment": "production",
                                   "planned_start": (now + timedelta(days=2)).isoformat(),
                                   "planned_end": (now + timedelta(days=2, hours=1)).isoformat(),
                                   }, "practitioner"
    if name == "catalog":
        return "/api/v1/teams", {"name": "inputs", "title": "t", "description": "d"}, "owner"
    if name == "notifier":
        return "/api/v1/subscriptions", {"url": "https://93.184.216.34/hook",
                                         "description": "d"}, "manager"
    return "/api/v1/deployments", {"service": "inputs", "environment": "staging",
                                   "version": "1.0.0", "ref": "main"}, "pipeline"


def cases(name: str, count: int = 12) -> list[tuple[str, str, str]]:
    """``(field, raw JSON body, token)``: drawn by hypothesis, one unstorable value each."""
    _, body, _ = create_body(name)
    drawn: list[tuple[str, str, str]] = []

    @settings(max_examples=count, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(field=st.sampled_from(sorted(body)), token=st.sampled_from(NUMBERS + TEXTS),
           nested=st.booleans())
    def draw(field: str, token: str, nested: bool) -> None:
        value: Any = {"deep": [_PLACEHOLDER]} if nested else _PLACEHOLDER
        raw = json.dumps({**body, field: value}).replace(f'"{_PLACEHOLDER}"', token)
        where = f"{field}.deep.0" if nested else field
        drawn.append((where, raw, token))

    draw()
    # Every kind of token at least once, whatever the draw.
    for token in NUMBERS + TEXTS:
        field = sorted(body)[0]
        drawn.append((field, json.dumps({**body, field: _PLACEHOLDER}).replace(
            f'"{_PLACEHOLDER}"', token), token))
    return drawn


def assert_refused(response: Any, field: str, what: str) -> None:
    assert response.status_code == 422, (what, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json"), what
    problem = response.json()
    assert problem["errors"][0]["field"] == field, (what, problem)


async def test_unstorable_values_in_a_body_are_422_naming_the_field(stored: Running) -> None:
    path, _, role = create_body(stored.name)
    headers = {**stored.headers(role), "Content-Type": "application/json"}
    for field, raw, token in cases(stored.name):
        r = await stored.client.post(path, content=raw.encode(), headers=headers)
        assert_refused(r, field, f"{field}={token}")
    # The same connection still serves a valid request afterwards.
    _, body, _ = create_body(stored.name)
    ok = await stored.client.post(path, json=body, headers=stored.headers(role))
    assert ok.status_code == 201, ok.text


async def test_nul_in_a_query_parameter_or_a_path_is_422(stored: Running) -> None:
    path, _, _ = create_body(stored.name)
    viewer = stored.headers("viewer")
    for name in ("service", "status", "cursor"):
        r = await stored.client.get(f"{path}?{name}=a%00b", headers=viewer)
        assert_refused(r, name, f"query {name}")
    r = await stored.client.get(f"{path}/abc%00def", headers=viewer)
    assert_refused(r, "path", "path")


async def test_a_cursor_with_a_naive_time_is_a_400(stored: Running) -> None:
    path, _, _ = create_body(stored.name)
    naive = base64.urlsafe_b64encode(orjson.dumps(
        ["2026-01-01T00:00:00", "00000000-0000-0000-0000-000000000000"])).decode().rstrip("=")
    r = await stored.client.get(path, params={"cursor": naive}, headers=stored.headers("viewer"))
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "urn:tandem:problem:bad-cursor"


@pytest.mark.parametrize("sub", ["", " padded ", "x" * 300, "tab\there"])
async def test_a_token_whose_sub_cannot_be_an_actor_is_401(stored: Running, sub: str) -> None:
    token = jwt.encode({"sub": sub, "role": "owner",
                        "exp": datetime.now(UTC) + timedelta(hours=1)},
                       stored.platform.jwt_secret, algorithm="HS256")
    path, body, _ = create_body(stored.name)
    r = await stored.client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401, r.text
    assert "actor" in r.json()["detail"]
    with pytest.raises(ValueError, match="sub"):
        mint_token(stored.platform.jwt_secret, sub=sub, role="owner", ttl=timedelta(hours=1))
