"""``tandem login``: sign in with the identity provider from a terminal (the OAuth device
authorization flow, RFC 8628) and print the access token, for ``TANDEM_TOKEN``.

The person opens the address shown (on any device), confirms the code and signs in; the
command polls the provider's token endpoint meanwhile, at the interval it asks for.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import httpx
import typer

from tandem_cli.api import CommandError, reporting

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _discover(issuer: str) -> dict[str, Any]:
    try:
        response = httpx.get(issuer.rstrip("/") + "/.well-known/openid-configuration",
                             timeout=10)
        response.raise_for_status()
        document: dict[str, Any] = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise CommandError(f"{issuer}: no OpenID configuration ({exc})") from None
    if "device_authorization_endpoint" not in document:
        raise CommandError(f"{issuer} offers no device authorization flow")
    return document


def login(
    issuer: Annotated[str, typer.Option(envvar="TANDEM_LOGIN_ISSUER",
                                        help="The identity provider (its issuer URL)")],
    client_id: Annotated[str, typer.Option(envvar="TANDEM_LOGIN_CLIENT_ID",
                                           help="Tandem's CLI client at the provider")]
    = "tandem-cli",
    scope: Annotated[str, typer.Option(help="Scopes asked for")] = "openid profile",
) -> None:
    """Sign in with your identity provider and print an access token:
    export TANDEM_TOKEN=$(tandem login --issuer https://idp.example.com)."""
    with reporting():
        provider = _discover(issuer)
        started = httpx.post(provider["device_authorization_endpoint"],
                             data={"client_id": client_id, "scope": scope}, timeout=10)
        if started.status_code != 200:
            raise CommandError(f"the provider refused to start a sign-in: {started.text[:200]}")
        device = started.json()
        where = device.get("verification_uri_complete") or device["verification_uri"]
        typer.echo(f"To sign in, open {where} and confirm the code {device['user_code']}.",
                   err=True)
        interval = float(device.get("interval", 5))
        deadline = time.monotonic() + float(device.get("expires_in", 600))
        while time.monotonic() < deadline:
            time.sleep(interval)
            answer = httpx.post(provider["token_endpoint"], timeout=10, data={
                "grant_type": DEVICE_GRANT, "device_code": device["device_code"],
                "client_id": client_id})
            body = answer.json()
            if answer.status_code == 200 and isinstance(body.get("access_token"), str):
                typer.echo(body["access_token"])
                return
            error = body.get("error")
            if error == "authorization_pending":
                continue
            if error == "slow_down":
                interval += 5
                continue
            said = f": {body['error_description']}" if body.get("error_description") else ""
            raise CommandError(f"sign-in ended: {error or answer.status_code}{said}")
        raise CommandError("the code expired before the sign-in was confirmed; run tandem login "
                           "again")
