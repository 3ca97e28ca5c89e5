"""HTTP conventions every service inherits from the shared app factory (contract section 3)."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from tests.shared.probe_service import create_probe_app, create_schema

from tandem.auth import mint_token
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers, running_service

PROBLEM = "application/problem+json"


@pytest.fixture
async def probe(platform: PlatformSettings, new_database):  # type: ignore[no-untyped-def]
    url = await new_database("notes")
    await create_schema(url)
    async with running_service(create_probe_app(platform, url)) as client:
        yield client


async def test_create_answers_201_with_location_etag_and_a_human_number(probe, platform) -> None:
    r = await probe.post(
        "/api/v1/notes", json={"text": "hello"}, headers=auth_headers(platform, "practitioner")
    )
    assert r.status_code == 201
    note = r.json()
    assert r.headers["location"] == f"/api/v1/notes/{note['id']}"
    assert r.headers["etag"] == '"1"'
    assert note["number"] == "NTE0000001"
    by_number = await probe.get(
        "/api/v1/notes/NTE0000001", headers=auth_headers(platform, "viewer")
    )
    assert by_number.json()["id"] == note["id"]


async def test_tokens_and_roles_are_enforced(probe, platform) -> None:
    body = {"text": "x"}
    assert (await probe.post("/api/v1/notes", json=body)).status_code == 401
    r = await probe.post("/api/v1/notes", json=body, headers=auth_headers(platform, "viewer"))
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM
    assert "viewer" in r.json()["detail"]
    expired = mint_token(platform.jwt_secret, sub="a", role="manager", ttl=timedelta(seconds=-5))
    forged = mint_token(
        "another-secret-that-is-long-enough-for-hs256",
        sub="a",
        role="manager",
        ttl=timedelta(hours=1),
    )
    no_role = jwt.encode({"sub": "a", "exp": 9999999999}, platform.jwt_secret, algorithm="HS256")
    for token in (expired, forged, no_role, "not-a-jwt"):
        r = await probe.get("/api/v1/notes", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["status"] == 401
    assert (
        await probe.get("/api/v1/notes", headers={"Authorization": "Basic abc"})
    ).status_code == 401


async def test_bad_input_is_a_problem_never_a_500(probe, platform) -> None:
    h = auth_headers(platform, "practitioner")
    r = await probe.post("/api/v1/notes", json={"text": ""}, headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert {"type", "title", "status", "detail", "errors"} <= problem.keys()
    assert problem["errors"][0]["field"] == "text"
    r = await probe.post(
        "/api/v1/notes", content=b"{not json", headers={**h, "content-type": "application/json"}
    )
    assert r.status_code == 422
    r = await probe.post("/api/v1/notes", json={"text": "x", "extra": 1}, headers=h)
    assert r.status_code == 422
    r = await probe.get("/api/v1/nothing-here", headers=h)
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await probe.post(
        "/api/v1/notes",
        content=b"x" * (1024 * 1024 + 1),
        headers={**h, "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.headers["content-type"] == PROBLEM
    r = await probe.get("/api/v1/notes?cursor=garbage", headers=h)
    assert r.status_code == 400
    r = await probe.get("/api/v1/notes?limit=500", headers=h)
    assert r.status_code == 422


async def test_idempotency_key_replays_the_first_answer_and_writes_once(probe, platform) -> None:
    h = {**auth_headers(platform, "practitioner"), "Idempotency-Key": "ci-run-42"}
    async with TopicWatcher(platform, platform.topic("notes")) as watcher:
        first = await probe.post("/api/v1/notes", json={"text": "deploy"}, headers=h)
        again = await probe.post("/api/v1/notes", json={"text": "deploy"}, headers=h)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        other = await probe.post("/api/v1/notes", json={"text": "other"}, headers=h)
        assert other.status_code == 422
        listed = await probe.get("/api/v1/notes", headers=h)
        assert len(listed.json()["items"]) == 1
        # The relay sends in commit order, so once a later write's event is on the topic,
        # a duplicate from the retry was sent too (on the first note's partition, after it).
        later = await probe.post(
            "/api/v1/notes", json={"text": "later"}, headers=auth_headers(platform, "practitioner")
        )
        subjects = {first.json()["id"], later.json()["id"]}
        events = await watcher.wait_for(lambda evs: subjects <= {e.subject for e in evs})
        await watcher.poll()  # anything still behind them on their partitions
        # Partitions arrive in any order: count, do not compare sequences.
        assert sorted(e.subject for e in watcher.events()) == sorted(subjects), events


async def test_if_match_and_transitions(probe, platform) -> None:
    h = auth_headers(platform, "practitioner")
    note = (await probe.post("/api/v1/notes", json={"text": "n"}, headers=h)).json()
    url = f"/api/v1/notes/{note['id']}/transitions"
    stale = await probe.post(url, json={"to": "published"}, headers={**h, "If-Match": '"7"'})
    assert stale.status_code == 412
    moved = await probe.post(url, json={"to": "published"}, headers={**h, "If-Match": '"1"'})
    assert moved.status_code == 200
    assert moved.json()["status"] == "published" and moved.headers["etag"] == '"2"'
    illegal = await probe.post(url, json={"to": "draft"}, headers=h)
    assert illegal.status_code == 409
    assert illegal.json()["allowed"] == ["archived"]
    unknown = await probe.post(url, json={"to": "flying"}, headers=h)
    assert unknown.status_code == 422


async def test_cursor_pagination_walks_every_item_once(probe, platform) -> None:
    h = auth_headers(platform, "practitioner")
    made = [
        (await probe.post("/api/v1/notes", json={"text": f"n{i}"}, headers=h)).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        q = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await probe.get(f"/api/v1/notes{q}", headers=h)).json()
        seen += [n["id"] for n in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(made))


async def test_health_and_metrics(probe, platform) -> None:
    assert (await probe.get("/livez")).status_code == 200
    ready = await probe.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    await probe.get("/api/v1/notes", headers=auth_headers(platform, "viewer"))
    metrics = (await probe.get("/metrics")).text
    assert (
        'tandem_http_requests_total{method="GET",route="/api/v1/notes",service="notes",status="200"}'
        in metrics
    )
