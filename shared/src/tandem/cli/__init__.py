"""The ``tandem`` command line."""

from __future__ import annotations

import typer

from tandem.cli.dev import dev
from tandem.cli.token import token_app

app = typer.Typer(help="Tandem: incidents, changes and deployments in step.", no_args_is_help=True,
                  add_completion=False)
app.command(help="Run the whole stack on the embedded defaults (broker, migrations, services).")(dev)
app.add_typer(token_app, name="token")


def main() -> None:
    app()
