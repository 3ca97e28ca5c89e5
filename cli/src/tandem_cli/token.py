"""``tandem token``: mint a local bearer token, make a signing key pair, revoke a token."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tandem.auth import Role, mint_token, new_signing_key, parse_ttl
from tandem.settings import PlatformSettings, private_dir
from tandem_cli.api import Api, CommandError, JsonOption, command_group, details, emit, reporting
from tandem_cli.whoami import token_claims

token_app = command_group("Bearer tokens: mint, revoke, and the key pair that signs them.")


@token_app.command("mint")
def mint(
    role: Annotated[Role, typer.Option(help="viewer, practitioner, manager, owner or pipeline")],
    sub: Annotated[str, typer.Option(help="Who the token speaks for (the actor on events)")],
    ttl: Annotated[str, typer.Option(help="Lifetime such as 30d, 12h, 15m")] = "30d",
) -> None:
    """Print a token signed with TANDEM_AUTH_SIGNING_KEY_FILE (a private key), else
    TANDEM_AUTH_SECRET, else the embedded default's secret. It carries a jti (to revoke it by)
    and lives at most TANDEM_AUTH_MAX_TOKEN_LIFETIME (90d)."""
    platform = PlatformSettings()
    try:
        lifetime = parse_ttl(ttl)
        longest = parse_ttl(platform.auth_max_token_lifetime)
        if lifetime > longest:
            raise ValueError(f"--ttl {ttl} is longer than the {platform.auth_max_token_lifetime} "
                             "a token may live (TANDEM_AUTH_MAX_TOKEN_LIFETIME)")
        token = mint_token(platform.signing_key, sub=sub, role=role, ttl=lifetime)
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)


@token_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option(help="Where to write the private key; the public key "
                                           "goes beside it with .pub")] = Path("var/auth-key"),
) -> None:
    """Make an Ed25519 key pair: the minter keeps the private key
    (TANDEM_AUTH_SIGNING_KEY_FILE); services get only the public one
    (TANDEM_AUTH_VERIFICATION_KEY_FILE), so no service can mint a token."""
    public_path = out.with_name(out.name + ".pub")
    if out.exists() or public_path.exists():
        typer.echo(f"error: {out} or {public_path} exists; not overwritten", err=True)
        raise typer.Exit(2)
    private_pem, public_pem = new_signing_key()
    private_dir(out.parent)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as private_file:
        private_file.write(private_pem)
    public_path.write_text(public_pem)
    typer.echo(f"private key {out} (keep it with the minter)\npublic key  {public_path} "
               "(give it to every service)")


REVOCATION_FIELDS = [("number", "number"), ("jti", "jti"), ("expires at", "expires_at"),
                     ("reason", "reason")]


@token_app.command("revoke")
def revoke(
    token_or_jti: Annotated[str, typer.Argument(
        metavar="JTI", help="The token's jti, or the token itself (its jti and exp are read)")],
    reason: Annotated[str, typer.Option(help="Why, for the record")] = "",
    as_json: JsonOption = False,
) -> None:
    """Revoke a token (a manager's): the catalog records it and every service refuses the
    token within seconds, until it would have expired anyway."""
    body: dict[str, object] = {"jti": token_or_jti, "reason": reason}
    with reporting(as_json):
        if token_or_jti.count(".") == 2:
            claims = token_claims(token_or_jti)
            if not isinstance(claims.get("jti"), str):
                raise CommandError("the token has no jti; it cannot be revoked, only expire")
            body["jti"] = claims["jti"]
            if isinstance(claims.get("exp"), int | float):
                body["expires_at"] = datetime.fromtimestamp(claims["exp"], UTC).isoformat()
        with Api("catalog") as api:
            revocation = api.request("POST", "/api/v1/revocations", json_body=body)
    emit(revocation, as_json, details(revocation, REVOCATION_FIELDS))
