"""The board's sign-in, in process: the redirect carries state and a PKCE S256 challenge, the
cookies are HttpOnly and SameSite=Lax, and Secure when the board is served over TLS."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from dashboard.config import DashboardSettings
from dashboard.main import create_app
from tandem.settings import PlatformSettings
from tandem_testing import isolated_platform
from tandem_testing.oidc import TestIssuer


@pytest.mark.parametrize(("base_url", "headers", "secure"), [
    ("https://board.example.test", {}, True),
    ("http://board.example.test", {"X-Forwarded-Proto": "https"}, True),
    ("http://127.0.0.1:8004", {}, False),
])
async def test_sign_in_starts_with_pkce_and_a_cookie_secure_under_tls(
        platform: PlatformSettings, tmp_path: Path, base_url: str, headers: dict[str, str],
        secure: bool) -> None:
    with TestIssuer() as idp:
        signed = isolated_platform(platform.kafka_bootstrap, tmp_path,
                                   auth_oidc_issuers=json.dumps([idp.config()]))
        app = create_app(signed, DashboardSettings(login_issuer=idp.issuer))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=base_url) as client:
            r = await client.get("/login", headers=headers)
            assert r.status_code == 302
            target = urlsplit(r.headers["location"])
            assert f"{target.scheme}://{target.netloc}{target.path}" == f"{idp.url}/authorize"
            query = parse_qs(target.query)
            assert query["code_challenge_method"] == ["S256"]
            assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256
            assert query["redirect_uri"] == [f"{base_url}/auth/callback"]
            cookie = r.headers["set-cookie"]
            assert cookie.startswith("tandem_login=")
            assert "HttpOnly" in cookie
            assert "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
            assert query["state"][0] in cookie  # the state comes back only with this cookie

            # A callback whose state this browser never started is refused.
            forged = await client.get("/auth/callback",
                                      params={"code": "c", "state": "another-state"})
            assert forged.status_code == 400
            assert forged.json()["type"] == "urn:tandem:problem:sign-in-state"
