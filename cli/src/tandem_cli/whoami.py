"""``tandem whoami``: which profile, token and services a command would use, and whether the
services accept the token."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    current_profile,
    emit,
    iso,
    reporting,
    service_url,
)

#: The services whose URL a command may use; the dashboard is a page, not a CLI target.
API_SERVICES = ("incidents", "changes", "deployments", "catalog")


def token_claims(token: str) -> dict[str, Any]:
    """The claims a token carries, read without its secret (the services check the signature)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, UnicodeDecodeError):
        raise CommandError("the token is not a JWT (three base64url parts)") from None
    if not isinstance(claims, dict):
        raise CommandError("the token's payload is not a JSON object")
    return claims


def _accepted(service: str) -> str:
    """``accepted``, or the one line the service refused with."""
    try:
        with Api(service, timeout=5.0) as api:
            api.get(f"/api/v1/{'services' if service == 'catalog' else service}",
                    params={"limit": 1})
    except CommandError as exc:
        return exc.message
    return "accepted"


def whoami(
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Ask each service a read with the token")] = True,
    as_json: JsonOption = False,
) -> None:
    """Show the profile, the token's subject, role and expiry, and each service's URL."""
    with reporting(as_json):
        profile = current_profile()
        claims = token_claims(profile.token) if profile.token else {}
        expires = claims.get("exp")
        answer: dict[str, Any] = {
            "profile": profile.name,
            "config_file": str(profile.path) if profile.path.is_file() else None,
            "token_source": profile.token_source,
            "sub": claims.get("sub"),
            "role": claims.get("role"),
            "expires_at": iso(datetime.fromtimestamp(expires, UTC))
            if isinstance(expires, int | float) else None,
            "services": {
                name: {"url": service_url(name, profile), "from": profile.url_source(name),
                       **({"token": _accepted(name)} if check else {})}
                for name in API_SERVICES
            },
        }
    expired = bool(answer["expires_at"]) and expires < datetime.now(UTC).timestamp()
    lines = [
        f"profile   {profile.name}"
        + (f" ({profile.path})" if answer["config_file"] else " (no config file)"),
        f"token     {profile.token_source}" if profile.token else
        "token     none (set TANDEM_TOKEN or a profile's token; `tandem token mint` makes one)",
    ]
    if profile.token:
        lines.append(f"subject   {answer['sub'] or '-'} as {answer['role'] or '-'}")
        if answer["expires_at"]:
            lines.append(f"expires   {answer['expires_at']}" + (" (expired)" if expired else ""))
    for name, target in answer["services"].items():
        line = f"{name:<10}{target['url']} ({target['from']})"
        if check:
            line += f": {target['token']}"
        lines.append(line)
    emit(answer, as_json, "\n".join(lines))
