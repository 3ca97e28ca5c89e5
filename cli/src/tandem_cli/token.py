"""``tandem token mint``: a bearer token for one of the five roles."""

from __future__ import annotations

from typing import Annotated

import typer

from tandem.auth import Role, mint_token, parse_ttl
from tandem.settings import PlatformSettings
from tandem_cli.api import command_group

token_app = command_group("Bearer tokens.")


@token_app.command("mint")
def mint(
    role: Annotated[Role, typer.Option(help="viewer, practitioner, manager, owner or pipeline")],
    sub: Annotated[str, typer.Option(help="Who the token speaks for (the actor on events)")],
    ttl: Annotated[str, typer.Option(help="Lifetime such as 30d, 12h, 15m")] = "30d",
) -> None:
    """Print a token signed with TANDEM_AUTH_SECRET (else the embedded default's secret)."""
    try:
        lifetime = parse_ttl(ttl)
        token = mint_token(PlatformSettings().jwt_secret, sub=sub, role=role, ttl=lifetime)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)
