"""The dashboard against the real broker and a real HTTP server: board, SSE stream, auth."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
from board_scenario import deployment, incident, iso, publish
from board_server import RunningDashboard, serve_dashboard, stop_dashboard

from tandem.auth import mint_token
from tandem.db import utcnow
from tandem.settings import PlatformSettings
from tandem_testing import eventually


async def read_frames(response: httpx.Response, count: int,
                      timeout: float = 20.0) -> list[dict[str, Any]]:
    """The next ``count`` SSE event frames (comments skipped) as {id, data}."""
    frames: list[dict[str, Any]] = []
    current: dict[str, Any] = {}

    async def collect() -> None:
        async for line in response.aiter_lines():
            if line == "":
                if "data" in current:
                    frames.append({"id": current.get("id"), "data": json.loads(current["data"])})
                    if len(frames) >= count:
                        return
                current.clear()
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            current[field] = value[1:] if value.startswith(" ") else value

    await asyncio.wait_for(collect(), timeout)
    return frames


async def board(d: RunningDashboard) -> dict[str, Any]:
    r = await d.client.get("/api/v1/board", headers=d.auth)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_reading_needs_a_token_as_header_or_query(dashboard: RunningDashboard,
                                                       platform: PlatformSettings) -> None:
    r = await dashboard.client.get("/api/v1/board")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await dashboard.client.get("/api/v1/stream", params={"access_token": "nonsense"})
    assert r.status_code == 401
    expired = mint_token(platform.jwt_secret, sub="x", role="viewer", ttl=timedelta(seconds=-5))
    r = await dashboard.client.get("/api/v1/board", params={"access_token": expired})
    assert r.status_code == 401
    r = await dashboard.client.get("/api/v1/board", params={"access_token": dashboard.token})
    assert r.status_code == 200
    page = await dashboard.client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await dashboard.client.get("/static/board.js")).status_code == 200
    assert (await dashboard.client.get("/readyz")).json()["status"] == "ok"


async def test_stream_sends_every_event_with_its_position_and_filters(
        dashboard: RunningDashboard, platform: PlatformSettings) -> None:
    api = incident("API down", "api", 1)
    web = incident("Web slow", "web", 3)
    dep = deployment("api", "1.0.0")
    async with dashboard.client.stream(
            "GET", "/api/v1/stream", params={"access_token": dashboard.token}) as everything, \
            dashboard.client.stream(
                "GET", "/api/v1/stream", headers=dashboard.auth,
                params={"types": "tandem.incident.*", "service": "api"}) as filtered:
        assert everything.status_code == 200
        assert everything.headers["content-type"].startswith("text/event-stream")
        await publish(platform, [api.created(), web.created(), dep.created(),
                                 api.moved("acknowledged")])
        frames = await read_frames(everything, 4)
        mine = await read_frames(filtered, 2)
    assert sorted(f["data"]["type"] for f in frames) == sorted([
        "tandem.incident.created", "tandem.incident.created", "tandem.deployment.created",
        "tandem.incident.transitioned"])
    for frame in frames:
        topic, partition, offset = frame["id"].rsplit(":", 2)
        assert topic in {platform.topic("incidents"), platform.topic("deployments")}
        assert partition.isdigit() and offset.isdigit()
        assert frame["data"]["specversion"] == "1.0"
    assert [f["data"]["subject"] for f in mine] == [api.id, api.id]
    assert [f["data"]["sequence"] for f in mine] == [1, 2]


async def test_stream_resumes_after_last_event_id(dashboard: RunningDashboard,
                                                  platform: PlatformSettings) -> None:
    inc = incident("Queue backlog", "billing", 2)
    await publish(platform, [inc.created(), inc.moved("acknowledged"), inc.moved("in_progress")])
    await eventually(lambda: _events_applied(dashboard, 3))
    async with dashboard.client.stream("GET", "/api/v1/stream", headers=dashboard.auth) as first:
        # Nothing is replayed without Last-Event-ID: the board snapshot covers the past.
        await publish(platform, [inc.moved("on_hold", on_hold_reason="awaiting_vendor")])
        [seen] = await read_frames(first, 1)
    assert seen["data"]["sequence"] == 4
    snapshot = await board(dashboard)
    feed_ids = [item["id"] for item in snapshot["feed"]]
    # A client that saw the second event resumes with the third and fourth, in order.
    async with dashboard.client.stream("GET", "/api/v1/stream", headers={
            **dashboard.auth, "Last-Event-ID": feed_ids[2]}) as resumed:
        frames = await read_frames(resumed, 2)
    assert [f["data"]["sequence"] for f in frames] == [3, 4]
    assert [f["id"] for f in frames] == [feed_ids[1], feed_ids[0]]


async def _events_applied(d: RunningDashboard, n: int) -> bool:
    return bool((await board(d))["events_applied"] >= n)


async def test_board_is_rebuilt_from_the_topics_on_start(platform: PlatformSettings) -> None:
    now = utcnow()
    down = incident("Checkout down", "checkout", 1, reported=now - timedelta(minutes=5))
    old = incident("Old glitch", "checkout", 3, reported=now - timedelta(hours=3))
    await publish(platform, [down.created(), old.created(),
                             old.moved("resolved", now, resolved_at=iso(now)),
                             down.moved("acknowledged", acknowledged_at=iso(now))])
    app, server, task, url = await serve_dashboard(platform)
    token = mint_token(platform.jwt_secret, sub="wall", role="viewer", ttl=timedelta(hours=1))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            async def caught_up() -> dict[str, Any] | None:
                body = (await client.get("/api/v1/board")).json()
                return body if body["caught_up"] and body["events_applied"] == 4 else None

            body = await eventually(caught_up)
    finally:
        await stop_dashboard(app, server, task)
    assert isinstance(body, dict)
    [open_incident] = body["incidents"]["open"]
    assert open_incident["id"] == down.id and open_incident["status"] == "acknowledged"
    assert open_incident["sla"]["responded"] is True
    assert [i["id"] for i in body["incidents"]["recently_resolved"]] == [old.id]
