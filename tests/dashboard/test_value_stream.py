"""The value stream map over the real broker: a fixed history of commits, changes and
deployments (published with their own times) and a real P1 with its review from the incidents
service (on SQLite, then PostgreSQL) give the stage times, wait against work and the costliest
stage computed by hand here; the API names a bad parameter; the SVG and the page draw it.

Fixed history (minutes after B, two days ago), service with owner pay-dev, operations pay-ops:

=========== =============== ======================================== ================
delivery    commit          change (status since)                    deploy started..done
=========== =============== ======================================== ================
1           B+0             new 60, assess 80, authorize 150,        250 .. 262
                            scheduled 240, implement 250
2           B+300           new 330, assess 340, scheduled 400       420 .. 425
3           B+500           none (no change: only its deploy counts) 510 .. 520
=========== =============== ======================================== ================

By hand: commit 60 and 30 (all wait); approval 180 (new 20 work, 160 wait) and 70 (10 work,
60 wait); scheduled 10 and 20 (wait); deploy 12, 5, 10 (work). The costliest is approval
(250 minutes in all).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from board_server import serve_dashboard, stop_dashboard
from playwright.async_api import async_playwright

from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from incidents.main import create_app
from tandem.auth import mint_token
from tandem.db import utcnow
from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import (
    auth_headers,
    eventually,
    isolated_platform,
    migrated_database,
    running_service,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
M = 60.0


@dataclass
class Stack:
    platform: PlatformSettings
    dashboard_url: str
    dashboard: httpx.AsyncClient
    incidents: httpx.AsyncClient
    token: str
    service: str
    base: datetime
    failure: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def at(base: datetime, minutes: float) -> datetime:
    return base + timedelta(minutes=minutes)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def change_events(service: str, base: datetime, moves: list[tuple[str, float]]) -> tuple[
        str, list[CloudEvent]]:
    cid = str(uuid.uuid4())
    created = at(base, moves[0][1])
    out = []
    for seq, (status, minute) in enumerate(moves, start=1):
        snapshot = {"id": cid, "number": f"CHG{uuid.uuid4().int % 10**7:07d}",
                    "type": "normal", "title": "Deploy", "service": service,
                    "environment": "production", "status": status, "version": seq,
                    "created_at": iso(created), "updated_at": iso(at(base, minute))}
        verb = "created" if seq == 1 else "transitioned"
        out.append(new_event(service="changes", type=f"tandem.change.{verb}", subject=cid,
                             sequence=seq, actor="carol", data={"change": snapshot}))
    return cid, out


def deployment_events(service: str, base: datetime, commit: float, started: float,
                      done: float, change_id: str | None) -> list[CloudEvent]:
    did = str(uuid.uuid4())
    snap = {"id": did, "number": f"DEP{uuid.uuid4().int % 10**7:07d}", "service": service,
            "environment": "production", "software_version": "1.0",
            "commits": [{"sha": uuid.uuid4().hex, "committed_at": iso(at(base, commit))}],
            "change_id": change_id, "status": "requested", "started_at": None,
            "finished_at": None, "rework": False, "created_at": iso(at(base, commit + 1)),
            "updated_at": iso(at(base, commit + 1))}
    running = {**snap, "status": "in_progress", "started_at": iso(at(base, started)),
               "updated_at": iso(at(base, started))}
    finished = {**running, "status": "succeeded", "finished_at": iso(at(base, done)),
                "updated_at": iso(at(base, done))}
    return [new_event(service="deployments", type=f"tandem.deployment.{verb}", subject=did,
                      sequence=seq, actor="ci", data={"deployment": snapshot})
            for seq, (verb, snapshot) in enumerate(
                [("created", snap), ("transitioned", running), ("transitioned", finished)],
                start=1)]


def catalog_event(service: str) -> CloudEvent:
    sid = str(uuid.uuid4())
    return new_event(service="catalog", type="tandem.service.created", subject=sid, sequence=1,
                     actor="olivia", data={"service": {
                         "id": sid, "number": "SVC0000001", "name": service, "tier": 1,
                         "owner_team": "pay-dev", "operations_team": "pay-ops",
                         "system": "pay-platform", "unowned": False, "version": 1}})


async def publish(platform: PlatformSettings, events: list[CloudEvent]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(
                platform.topic(event.source.rsplit("/", 1)[-1]), event.to_bytes(),
                key=event.subject.encode(), headers=[("content-type", CONTENT_TYPE.encode())])
    finally:
        await producer.stop()


async def real_failure(platform: PlatformSettings, client: httpx.AsyncClient,
                       service: str) -> dict[str, Any]:
    """A P1 acknowledged and resolved through the incidents service, its review worked and
    completed: the times come from the service's own clock."""
    ops = auth_headers(platform, "practitioner", "olga")

    async def known() -> bool:
        r = await client.get("/api/v1/incident-metrics", params={"team": "pay-ops"},
                             headers=ops)
        return service in (r.json()["services"] or [])
    await eventually(known)
    r = await client.post("/api/v1/incidents", headers=ops, json={
        "title": "Card payments fail", "service": service, "environment": "production",
        "impact": 1, "urgency": 1})
    incident = r.json()
    url = f"/api/v1/incidents/{incident['id']}/transitions"
    await client.post(url, headers=ops, json={"to": "acknowledged"})
    resolved = (await client.post(url, headers=ops, json={
        "to": "resolved", "resolution_code": "resolved_by_change",
        "resolution_notes": "hotfix"})).json()
    review_url = f"/api/v1/reviews/{incident['number']}"
    await client.post(f"{review_url}/factors", headers=ops, json={"text": "no load test"})
    review = (await client.post(f"{review_url}/transitions", headers=ops,
                                json={"to": "completed"})).json()
    return {"incident": resolved, "review": review}


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "postgresql"])
async def stack(request: pytest.FixtureRequest, broker: EmbeddedBroker,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    directory = tmp_path_factory.mktemp("value-stream")
    platform = isolated_platform(broker.bootstrap, directory)
    service = f"pay-{uuid.uuid4().hex[:6]}"
    base = utcnow() - timedelta(days=2)
    async with AsyncExitStack() as exits:
        url = await migrated_database(exits, "incidents", directory, request.param,
                                      MIGRATIONS_DIR)
        incidents = await exits.enter_async_context(running_service(
            create_app(platform, IncidentsSettings(database_url=url))))
        app, server, task, dash_url = await serve_dashboard(platform)
        exits.push_async_callback(stop_dashboard, app, server, task)
        dashboard = await exits.enter_async_context(httpx.AsyncClient(base_url=dash_url,
                                                                      timeout=10))
        c1, c1_events = change_events(service, base, [
            ("new", 60), ("assess", 80), ("authorize", 150), ("scheduled", 240),
            ("implement", 250)])
        c2, c2_events = change_events(service, base, [
            ("new", 330), ("assess", 340), ("scheduled", 400)])
        await publish(platform, [
            catalog_event(service), *c1_events, *c2_events,
            *deployment_events(service, base, 0, 250, 262, c1),
            *deployment_events(service, base, 300, 420, 425, c2),
            *deployment_events(service, base, 500, 510, 520, None)])
        failure = await real_failure(platform, incidents, service)
        token = mint_token(platform.jwt_secret, sub="wall", role="viewer",
                           ttl=timedelta(hours=1))
        yield Stack(platform, dash_url, dashboard, incidents, token, service, base, failure)


async def shown(stack: Stack, **params: str) -> dict[str, Any]:
    async def complete() -> dict[str, Any] | None:
        r = await stack.dashboard.get("/api/v1/value-stream", params=params,
                                      headers=stack.auth)
        body = r.json()
        stages = {s["name"]: s for s in body.get("stages", [])}
        done = (r.status_code == 200 and body["deliveries"] == 3 and body["failures"] == 1
                and stages["review"]["count"] == 1)
        return body if done else None
    return await eventually(complete)  # type: ignore[return-value]


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b.replace("Z", "+00:00"))
            - datetime.fromisoformat(a.replace("Z", "+00:00"))).total_seconds()


async def test_the_value_stream_equals_the_hand_computation(stack: Stack) -> None:
    body = await shown(stack, service=stack.service)
    got = {s["name"]: s for s in body["stages"]}
    # Deliveries, by hand (module docstring).
    keys = ("count", "p50_s", "p90_s", "wait_s", "work_s")
    expected = {
        "commit": (2, 45 * M, 57 * M, 90 * M, 0),
        "approval": (2, 125 * M, 169 * M, 220 * M, 30 * M),
        "scheduled": (2, 15 * M, 19 * M, 30 * M, 0),
        "deploy": (3, 10 * M, 11.6 * M, 0, 27 * M),
    }
    for name, figures in expected.items():
        for key, value in zip(keys, figures, strict=True):
            assert got[name][key] == pytest.approx(value, abs=1e-3), (name, key)
        assert got[name]["holder"] == "owner" and got[name]["teams"] == ["pay-dev"]
    # The failure, from the incidents service's own times: waiting to be acknowledged, then
    # worked until resolved (no separate mitigation, never on hold); the review waited until
    # its first factor, then was worked until completed.
    inc, review = stack.failure["incident"], stack.failure["review"]
    failure = {
        "response": (seconds(inc["reported_at"], inc["acknowledged_at"]), 0.0),
        "mitigation": (0.0, seconds(inc["acknowledged_at"], inc["resolved_at"])),
        "resolution": (0.0, 0.0),
        "review": (seconds(review["created_at"], review["started_at"]),
                   seconds(review["started_at"], review["completed_at"])),
    }
    for name, (wait, work) in failure.items():
        assert got[name]["count"] == 1
        assert got[name]["wait_s"] == pytest.approx(wait, abs=1e-3), name
        assert got[name]["work_s"] == pytest.approx(work, abs=1e-3), name
    assert (got["response"]["holder"], got["response"]["teams"]) == ("operations", ["pay-ops"])
    assert got["resolution"]["teams"] == ["pay-dev"]
    wait = 340 * M + sum(w for w, _ in failure.values())
    work = 57 * M + sum(w for _, w in failure.values())
    assert body["flow_efficiency"] == pytest.approx(round(work / (wait + work), 4))
    assert body["costliest_stage"] == "approval"
    # The team's and the system's stream is the same one service's.
    for scope in ({"team": "pay-ops"}, {"system": "pay-platform"}):
        other = await shown(stack, **scope)
        assert other["services"] == [stack.service]
        assert other["stages"] == body["stages"]


async def test_bad_parameters_are_problems_naming_the_field(stack: Stack) -> None:
    cases = [({"service": stack.service, "window": "soon"}, 422, "window"),
             ({"service": stack.service, "team": "pay-ops"}, 422, "team"),
             ({}, 422, "service"),
             ({"team": "nobody-knows"}, 404, None)]
    for params, status, field in cases:
        r = await stack.dashboard.get("/api/v1/value-stream", params=params,
                                      headers=stack.auth)
        assert r.status_code == status, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        if field:
            assert r.json()["errors"][0]["field"] == field
    r = await stack.dashboard.get("/api/v1/value-stream", params={"service": stack.service})
    assert r.status_code == 401


async def test_the_map_is_an_svg_a_person_can_download(stack: Stack) -> None:
    await shown(stack, service=stack.service)
    r = await stack.dashboard.get("/api/v1/value-stream.svg",
                                  params={"service": stack.service, "download": "true"},
                                  headers=stack.auth)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/svg+xml")
    assert "attachment" in r.headers["content-disposition"]
    svg = r.text
    assert svg.startswith("<svg") and svg.count('class="stage"') == 8
    assert 'data-stage="approval" x=' in svg and 'stroke="#c0392b"' in svg
    assert "costliest stage: change requested → change authorized" in svg


async def test_the_page_draws_the_map_in_a_browser(stack: Stack) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: make browser")
    await shown(stack, service=stack.service)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{stack.dashboard_url}/value-stream?service={stack.service}"
                            f"&access_token={stack.token}")
            await page.wait_for_selector("#map svg rect.stage", timeout=10_000)
            boxes = await page.locator("#map svg rect.stage").count()
            costly = await page.locator("#stages tr.costliest td").first.text_content()
            summary = await page.locator("#summary").text_content()
            href = await page.locator("#download").get_attribute("href")
            assert "access_token" not in page.url  # the token left the address bar
            await page.screenshot(path=ARTIFACTS / "value-stream.png", full_page=True)
        finally:
            await chromium.close()
    assert errors == []
    assert boxes == 8
    assert costly == "change requested → change authorized"
    assert summary is not None and "3 deliveries and 1 failure of" in summary
    assert href is not None and "download=true" in href
    # docs/value-stream.png is a copy of this screenshot.
