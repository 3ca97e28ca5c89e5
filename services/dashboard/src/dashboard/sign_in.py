"""People sign in to the board through their identity provider: the authorization code flow
with PKCE (RFC 7636), the board being a public client (no client secret).

``/login`` sends the browser to the issuer's authorization endpoint with a fresh ``state`` and
code challenge (kept, with the verifier, in a short-lived HttpOnly cookie scoped to the
callback); ``/auth/callback`` checks the state, exchanges the code with the verifier, verifies
the access token as every request's token is verified (a trusted issuer, the audience, a role),
and keeps it in the session cookie: HttpOnly (no script reads it), SameSite=Lax, Secure when
the board is served over TLS. The board's reads then need no token in the URL.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from dashboard.config import DashboardSettings
from tandem.auth import verifier_of
from tandem.problems import Problem

#: The cookie that carries a signed-in person's access token.
SESSION_COOKIE = "tandem_session"
#: The cookie that carries one sign-in's state and PKCE verifier, until the callback.
LOGIN_COOKIE = "tandem_login"
CALLBACK_PATH = "/auth/callback"

router = APIRouter(include_in_schema=False)


def _settings(request: Request) -> DashboardSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _secure(request: Request) -> bool:
    """Whether the board is served over TLS (directly, or behind a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _redirect_uri(request: Request, settings: DashboardSettings) -> str:
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    return base + CALLBACK_PATH


async def _provider(request: Request, settings: DashboardSettings) -> dict[str, Any]:
    """The issuer's discovery document (fetched once per process)."""
    cached: dict[str, Any] | None = getattr(request.app.state, "login_provider", None)
    if cached is not None:
        return cached
    assert settings.login_issuer is not None
    url = settings.login_issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(url)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError):
        raise Problem(502, "The identity provider could not be reached; retry shortly.",
                      type_="urn:tandem:problem:identity-provider-unreachable") from None
    request.app.state.login_provider = document
    return document


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@router.get("/auth/session")
async def session(request: Request) -> JSONResponse:
    """Whether this browser is signed in, and whether sign-in is offered (the page asks)."""
    token = request.cookies.get(SESSION_COOKIE)
    signed_in = False
    if token:
        try:
            verifier_of(request).verify(token)
            signed_in = True
        except Problem:
            signed_in = False
    return JSONResponse({"signed_in": signed_in,
                         "sign_in": _settings(request).login_issuer is not None},
                        headers={"Cache-Control": "no-store"})


@router.get("/login")
async def login(request: Request) -> RedirectResponse:
    """Start signing in: to the identity provider, with state and a PKCE challenge."""
    settings = _settings(request)
    if settings.login_issuer is None:
        raise Problem(404, "Sign-in is not configured (TANDEM_DASHBOARD_LOGIN_ISSUER); open "
                           "the board with ?access_token= instead.",
                      type_="urn:tandem:problem:sign-in-not-configured")
    provider = await _provider(request, settings)
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    query = urlencode({
        "response_type": "code", "client_id": settings.login_client_id,
        "redirect_uri": _redirect_uri(request, settings), "scope": settings.login_scope,
        "state": state, "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    })
    response = RedirectResponse(f"{provider['authorization_endpoint']}?{query}", status_code=302)
    response.set_cookie(LOGIN_COOKIE, f"{state}.{verifier}", max_age=600, path=CALLBACK_PATH,
                        httponly=True, samesite="lax", secure=_secure(request))
    return response


@router.get(CALLBACK_PATH)
async def callback(request: Request, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> RedirectResponse:
    """The provider's answer: check the state, exchange the code, keep the token."""
    settings = _settings(request)
    if settings.login_issuer is None:
        raise Problem(404, "Sign-in is not configured.",
                      type_="urn:tandem:problem:sign-in-not-configured")
    if error:
        raise Problem(401, f"The identity provider refused the sign-in ({error[:64]}).",
                      type_="urn:tandem:problem:sign-in-refused")
    kept_state, _, verifier = request.cookies.get(LOGIN_COOKIE, "").partition(".")
    if not code or not state or not kept_state or not secrets.compare_digest(state, kept_state):
        raise Problem(400, "This sign-in was not started here or has expired; start again at "
                           "/login.", type_="urn:tandem:problem:sign-in-state")
    provider = await _provider(request, settings)
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            answer = await client.post(provider["token_endpoint"], data={
                "grant_type": "authorization_code", "code": code,
                "redirect_uri": _redirect_uri(request, settings),
                "client_id": settings.login_client_id, "code_verifier": verifier})
    except httpx.HTTPError:
        raise Problem(502, "The identity provider could not be reached; retry shortly.",
                      type_="urn:tandem:problem:identity-provider-unreachable") from None
    token = answer.json().get("access_token") if answer.status_code == 200 else None
    if not isinstance(token, str):
        raise Problem(401, "The identity provider did not give an access token for this "
                           "sign-in.", type_="urn:tandem:problem:sign-in-refused")
    verifier_of(request).verify(token)  # a 401 problem naming the failed check
    expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    max_age = max(1, int(expires - time.time())) if isinstance(expires, int | float) else 3600
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True,
                        samesite="lax", secure=_secure(request))
    response.delete_cookie(LOGIN_COOKIE, path=CALLBACK_PATH)
    return response


@router.get("/logout")
async def logout() -> RedirectResponse:
    """Forget the session here (the identity provider's own session is its own)."""
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
