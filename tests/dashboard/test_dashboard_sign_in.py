"""A person signs in to the board in Debian's Chromium through a real OIDC provider (Node's
``oidc-provider`` on loopback): authorization code with PKCE, then an HttpOnly, SameSite=Lax
session cookie; no token ever in the address bar."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from board_scenario import incident, publisher
from board_server import serve_dashboard, stop_dashboard
from playwright.async_api import Browser

from dashboard.config import DashboardSettings
from tandem.db import utcnow
from tandem.settings import PlatformSettings
from tandem_cli.broker import free_port
from tandem_testing import isolated_platform
from tandem_testing.oidc_provider import OidcProvider


async def test_a_person_signs_in_to_the_board_and_sees_it(
        browser: Browser, platform: PlatformSettings, tmp_path: Path) -> None:
    port = free_port()
    board_url = f"http://127.0.0.1:{port}"
    with OidcProvider(accounts={"vic": ["ops-viewers"], "eve": []},
                      redirect_uris=[f"{board_url}/auth/callback"]) as provider:
        signed = isolated_platform(platform.kafka_bootstrap, tmp_path,
                                   topic_prefix=platform.topic_prefix,
                                   auth_oidc_issuers=json.dumps([provider.config(
                                       roles={"ops-viewers": "viewer"})]))
        settings = DashboardSettings(login_issuer=provider.issuer)
        app, server, task, url = await serve_dashboard(signed, settings, port=port)
        try:
            # Without a session the board's data is refused.
            async with httpx.AsyncClient(base_url=url) as anonymous:
                assert (await anonymous.get("/api/v1/board")).status_code == 401
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{url}/")
            # The board sends the browser to the provider's sign-in page.
            await page.wait_for_selector("input[name=login]", timeout=15_000)
            assert page.url.startswith(provider.issuer)
            await page.fill("input[name=login]", "vic")
            await page.fill("input[name=password]", "any password")
            await page.click("button[type=submit]")
            await page.wait_for_selector("#status.live", timeout=15_000)
            assert page.url == f"{url}/"  # no token, no code left in the address bar
            cookies = {c["name"]: c for c in await context.cookies(url)}
            session = cookies["tandem_session"]
            assert session["httpOnly"] is True
            assert session["sameSite"] == "Lax"
            assert session["secure"] is False  # served over plain HTTP here; Secure under TLS
            assert await page.evaluate("document.cookie") == ""  # no script can read it

            # The signed-in board is live: a new incident appears.
            inc = incident("Checkout down", "checkout", 1, reported=utcnow())
            async with publisher(signed) as send:
                await send([inc.created()])
                await page.locator(f'#incidents [data-incident-id="{inc.id}"]').wait_for(
                    timeout=5_000)
            assert errors == []

            # The session reads the board; signing out ends it.
            assert (await context.request.get(f"{url}/api/v1/board")).status == 200
            out = await context.request.get(f"{url}/logout", max_redirects=0)
            assert out.status == 303
            assert "tandem_session" not in {c["name"] for c in await context.cookies(url)}
            assert (await context.request.get(f"{url}/api/v1/board")).status == 401
            await context.close()

            # A person whose groups map to no Tandem role is not let in.
            context = await browser.new_context()
            page = await context.new_page()
            await page.goto(f"{url}/login")
            await page.wait_for_selector("input[name=login]", timeout=15_000)
            await page.fill("input[name=login]", "eve")
            await page.fill("input[name=password]", "any password")
            await page.click("button[type=submit]")
            await page.wait_for_load_state("networkidle")
            body = await page.text_content("body") or ""
            assert "map to no Tandem role" in body
            assert "tandem_session" not in {c["name"] for c in await context.cookies(url)}
            await context.close()
        finally:
            await stop_dashboard(app, server, task)
