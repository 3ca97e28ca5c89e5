"""The board in a real headless Chromium: live updates, no console errors, text stays text.

Events are published onto the topics by the test itself (the board depends on no other
service). Screenshots are kept under test-artifacts/dashboard/.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from board_scenario import (
    busy_afternoon,
    deployment_history,
    incident,
    iso,
    publish,
    publisher,
)
from board_server import RunningDashboard
from playwright.async_api import Browser, Page, expect

from tandem.db import utcnow
from tandem.settings import PlatformSettings
from tandem_testing import eventually

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
HOSTILE_TITLE = ('<script>window.__tandemPwned = 1</script>'
                 '<img src=x onerror="window.__tandemPwned = 2"> Checkout down')


@pytest.fixture(autouse=True)
def artifacts() -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)


async def open_board(browser: Browser, dashboard: RunningDashboard,
                     errors: list[str]) -> Page:
    page = await browser.new_page(viewport={"width": 1720, "height": 1300})
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error"
            else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    await page.goto(f"{dashboard.url}/?access_token={dashboard.token}")
    await page.wait_for_selector("#status.live", timeout=10_000)
    return page


async def test_an_incident_appears_live_and_its_resolution_updates_it(
        browser: Browser, dashboard: RunningDashboard, platform: PlatformSettings) -> None:
    errors: list[str] = []
    page = await open_board(browser, dashboard, errors)
    assert "access_token" not in page.url  # the token leaves the address bar
    inc = incident(HOSTILE_TITLE, "checkout", 1, reported=utcnow())
    async with publisher(platform) as send:
        started = time.monotonic()
        await send([inc.created()])
        row = page.locator(f'#incidents [data-incident-id="{inc.id}"]')
        await row.wait_for(timeout=2_000)
        appeared_after = time.monotonic() - started
        assert appeared_after < 2.0, appeared_after
        assert await row.locator(".title .text").text_content() == HOSTILE_TITLE
        assert await row.locator("script, img").count() == 0
        assert await page.evaluate("window.__tandemPwned") is None
        assert await row.locator(".prio").text_content() == "P1"
        assert "ack in" in (await row.locator(".sla").text_content() or "")
        await page.locator(f'#feed [data-event-id] >> text="{inc.snapshot["number"]}"'
                           ).first.wait_for(timeout=2_000)
        await page.screenshot(path=ARTIFACTS / "incident-open.png", full_page=True)

        now = utcnow()
        started = time.monotonic()
        await send([inc.moved("resolved", now, resolved_at=iso(now),
                              resolution_code="solution_provided")])
        await page.locator(f'#resolved [data-incident-id="{inc.id}"][data-status="resolved"]'
                           ).wait_for(timeout=2_000)
        assert time.monotonic() - started < 2.0, time.monotonic() - started
    assert await page.locator(f'#incidents [data-incident-id="{inc.id}"]').count() == 0
    assert await page.locator("#incidents .empty").text_content() == "No open incidents."
    await page.screenshot(path=ARTIFACTS / "incident-resolved.png", full_page=True)

    # The server drops the page's stream (as it does a slow client); what is published
    # meanwhile arrives when the browser reconnects with Last-Event-ID, each event once.
    hub = dashboard.app.state.hub
    [stream] = list(hub.subscribers)
    hub.drop(stream)
    later = incident("Queue consumers stalled", "billing", 2)
    await publish(platform, [later.created()])
    await page.locator(f'#incidents [data-incident-id="{later.id}"]').wait_for(timeout=10_000)
    ids = await page.locator("#feed li").evaluate_all("items => items.map(i => i.dataset.eventId)")
    assert len(ids) == len(set(ids)) == 3
    await page.close()
    assert errors == []


async def test_the_board_shows_a_realistic_afternoon(
        browser: Browser, dashboard: RunningDashboard, platform: PlatformSettings) -> None:
    errors: list[str] = []
    page = await open_board(browser, dashboard, errors)
    now = utcnow()
    history, afternoon = deployment_history(now), busy_afternoon(now)
    async with publisher(platform) as send:
        await send(history)
        # Polling by locator: the page's CSP forbids the eval a string predicate needs.
        await expect(page.locator("#feed li")).to_have_count(60, timeout=20_000)
        await send(afternoon)

    async def board_has_everything() -> bool:
        body = (await dashboard.client.get("/api/v1/board", headers=dashboard.auth)).json()
        return bool(body["events_applied"] == len(history) + len(afternoon))

    await eventually(board_has_everything)
    # The page follows the stream: incidents by priority, changes, freezes, gates, DORA.
    await expect(page.locator("#incidents .row .prio")).to_have_text(["P1", "P2", "P3", "P4"])
    await expect(page.locator("#changes .row")).to_have_count(4)
    await expect(page.locator("#freezes .row.active")).to_have_count(1)
    await expect(page.locator("#freezes .row.scheduled")).to_have_count(1)
    await expect(page.locator("#deployments .chip.prevented")).to_have_count(1)
    await expect(page.locator("#dora .service-card")).to_have_count(3)
    await expect(page.locator('#dora .service-card[data-service="checkout"] '
                              '[data-metric="lead_time"] .bucket')).to_have_text("elite")
    buckets = await page.locator("#dora [data-metric] .bucket").all_text_contents()
    assert set(buckets) <= {"elite", "high", "medium", "low", "n/a"}
    assert await page.locator("#dora svg polyline").count() >= 9  # a trend line per metric
    await expect(page.locator("#feed li")).to_have_count(60)
    # Who works each incident and who builds and runs its service; unowned services as such.
    await expect(page.locator("#incidents .row.p1 .teams")).to_have_text(
        "assigned to checkout-ops · built by checkout-dev")
    await expect(page.locator("#incidents .row.p3 .teams .tag.unowned")).to_have_count(1)
    await expect(page.locator("#services .row")).to_have_count(2)
    await expect(page.locator("#services .row.unowned")).to_have_attribute("data-service",
                                                                           "search")
    await page.screenshot(path=ARTIFACTS / "board.png", full_page=True)
    await page.close()
    assert errors == []


#: Elements whose text a person must be able to read whole (nothing cut off).
READ_WHOLE = ("#incidents .row .title, #incidents .row .num, #incidents .row .meta, "
              "#changes .row .title, #changes .row .meta, #deployments .row .meta, "
              "#freezes .row .chip, #deployments .reasons, #deployments .row .num, "
              "#dora .metric .value, .panel h2")


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (1920, 1080)])
async def test_the_board_reads_whole_on_a_laptop_and_a_desktop(
        browser: Browser, dashboard: RunningDashboard, platform: PlatformSettings,
        width: int, height: int) -> None:
    errors: list[str] = []
    page = await browser.new_page(viewport={"width": width, "height": height})
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    await page.goto(f"{dashboard.url}/?access_token={dashboard.token}")
    await page.wait_for_selector("#status.live", timeout=10_000)
    now = utcnow()
    async with publisher(platform) as send:
        await send(deployment_history(now) + busy_afternoon(now))
    await expect(page.locator("#incidents .row .prio")).to_have_count(4, timeout=20_000)
    await expect(page.locator("#dora .service-card")).to_have_count(3)

    # The open incidents and DORA are both on the first screen, no scrolling.
    for panel in (".panel.incidents", ".panel.dora"):
        box = await page.locator(panel).bounding_box()
        assert box is not None and box["y"] + 60 < height, (panel, box)
    assert await page.evaluate("document.documentElement.scrollWidth") <= width

    cut = await page.locator(READ_WHOLE).evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1 ||"
        " e.scrollHeight > e.clientHeight + 1).map(e => e.className + ': ' + e.textContent)")
    assert cut == [], cut

    # Texts read as sentences: a gate's reasons, a freeze's end, who acted.
    reasons = await page.locator("#deployments .reasons").all_text_contents()
    assert reasons and not any(".;" in r for r in reasons), reasons
    freezes = await page.locator("#freezes .row.active .chip").all_text_contents()
    assert freezes and all(f.startswith("frozen until ") for f in freezes), freezes
    metas = await page.locator("#incidents .row .meta").first.text_content()
    assert metas is not None and " · last by " in metas
    # docs/board-1280.png and docs/board-1920.png are copies of these.
    await page.screenshot(path=ARTIFACTS / f"board-{width}.png")
    await page.close()
    assert errors == []
