"""Fixtures of the dashboard tests: a running dashboard with a viewer token, and Debian's
Chromium for the browser tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from board_server import RunningDashboard, serve_dashboard, stop_dashboard
from playwright.async_api import Browser, async_playwright

from tandem.auth import mint_token
from tandem.settings import PlatformSettings


@pytest.fixture
async def dashboard(platform: PlatformSettings) -> AsyncIterator[RunningDashboard]:
    app, server, task, url = await serve_dashboard(platform)
    token = mint_token(platform.jwt_secret, sub="wall-screen", role="viewer",
                       ttl=timedelta(hours=1))
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield RunningDashboard(app, url, token, client)
    finally:
        await stop_dashboard(app, server, task)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()
