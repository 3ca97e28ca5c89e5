"""The ``tandem`` command line.

The pipeline commands import only what they use, so a CI step starts in a fraction of the time
the whole stack (``dev``) needs to import.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

HELP = "Tandem: incidents, changes and deployments in step, and who owns what."
DEV_HELP = "Run the whole stack on the embedded defaults (broker, migrations, services)."


#: One module per noun of ``tandem_cli``, each with its ``<noun>_app``.
LIGHT_GROUPS = ("deploy", "incident", "change", "freeze", "catalog", "events", "dlq",
                "webhook")


def _group(name: str) -> typer.Typer:
    module = importlib.import_module(f"tandem_cli.{name}")
    return getattr(module, f"{name}_app")  # type: ignore[no-any-return]


def build_app(only: str | None = None) -> typer.Typer:
    """The whole CLI, or just the group ``only`` (what ``main`` runs for a pipeline command)."""
    app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)
    if only is None:
        from tandem_cli.dev import dev
        from tandem_cli.token import token_app

        app.command(help=DEV_HELP)(dev)
        app.add_typer(token_app, name="token")
    for name in LIGHT_GROUPS:
        if only is None or name == only:
            app.add_typer(_group(name), name=name)
    return app


def __getattr__(name: str) -> Any:
    # ``tandem_cli.app``: the whole CLI, built on first use.
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    build_app(command if command in LIGHT_GROUPS else None)()
