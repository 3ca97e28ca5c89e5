"""Fixtures of the dashboard tests: a running dashboard with a viewer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from board_server import RunningDashboard, serve_dashboard, stop_dashboard

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
