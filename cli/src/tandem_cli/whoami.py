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


def _identity(service: str) -> tuple[str, dict[str, Any] | None]:
    """``accepted`` and who the service takes the token for, or the one line it refused
    with."""
    try:
        with Api(service, timeout=5.0) as api:
            seen = api.get("/api/v1/identity")
    except CommandError as exc:
        return exc.message, None
    return "accepted", seen if isinstance(seen, dict) else None


def whoami(
    check: Annotated[bool, typer.Option(
        "--check/--no-check", help="Ask each service who it takes the token for")] = True,
    as_json: JsonOption = False,
) -> None:
    """Show the profile, the token's subject, role and expiry, and each service's URL."""
    with reporting(as_json):
        profile = current_profile()
        claims = token_claims(profile.token) if profile.token else {}
        expires = claims.get("exp")
        checked = {name: _identity(name) for name in API_SERVICES} if check else {}
        # An identity provider's token carries groups, not a role: the services say which
        # role and teams they map it to.
        seen = next((who for _, who in checked.values() if who), None)
        answer: dict[str, Any] = {
            "profile": profile.name,
            "config_file": str(profile.path) if profile.path.is_file() else None,
            "token_source": profile.token_source,
            "sub": seen["sub"] if seen else claims.get("sub"),
            "role": seen["role"] if seen else claims.get("role"),
            "issuer": seen["issuer"] if seen else claims.get("iss"),
            "teams": seen["teams"] if seen else [],
            "expires_at": iso(datetime.fromtimestamp(expires, UTC))
            if isinstance(expires, int | float) else None,
            "services": {
                name: {"url": service_url(name, profile), "from": profile.url_source(name),
                       **({"token": checked[name][0]} if check else {})}
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
        lines.append(f"subject   {answer['sub'] or '-'} as {answer['role'] or '-'}"
                     + (f" (teams: {', '.join(answer['teams'])})" if answer["teams"] else ""))
        if answer["issuer"]:
            lines.append(f"issuer    {answer['issuer']}")
        if answer["expires_at"]:
            lines.append(f"expires   {answer['expires_at']}" + (" (expired)" if expired else ""))
    for name, target in answer["services"].items():
        line = f"{name:<10}{target['url']} ({target['from']})"
        if check:
            line += f": {target['token']}"
        lines.append(line)
    emit(answer, as_json, "\n".join(lines))
