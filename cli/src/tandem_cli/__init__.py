"""The ``tandem`` command line.

The pipeline commands import only what they use, so a CI step starts in a fraction of the time
the whole stack (``dev``) needs to import.
"""

from __future__ import annotations

import importlib
import sys
import typing
from collections.abc import Sequence
from typing import Annotated, Any

import typer

# typer 0.29 carries its own copy of click: its exceptions are these, not the click package's.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperGroup, TyperOption

from tandem_cli.api import EXIT_USAGE, cli_version, command_group
from tandem_cli.config import choose_profile

HELP = "Tandem: incidents, changes and deployments in step, and who owns what."
DEV_HELP = "Run the whole stack on the embedded defaults (broker, migrations, services)."


#: One module per noun of ``tandem_cli``, each with its ``<noun>_app``.
LIGHT_GROUPS = ("deploy", "incident", "change", "freeze", "catalog", "events", "dlq",
                "webhook", "review", "import")
#: A group whose module is named otherwise (``import`` is a Python keyword).
GROUP_MODULES = {"import": "history"}
#: Options of ``tandem`` itself that take a value (``tandem --profile prod incident list``).
ROOT_VALUE_OPTIONS = ("--profile",)


#: How help names an option's value, by its type (typer would print ``<str>``, ``<list[str]>``).
METAVARS = {"str": "TEXT", "int": "N", "float": "NUMBER", "datetime": "TIME", "Path": "PATH"}


def _plain_metavars(command: Any) -> None:
    """Name every option's value in words a person reads (``--title TEXT``, ``--limit N``)."""
    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument):
            # An argument's name says what it is (REF, TEXT); its Python type adds nothing.
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        elif isinstance(param, TyperOption) and param.metavar is None and not (
                param.is_flag or param.count):
            desc = param.type_descriptor
            if desc.is_choice:
                continue
            base = desc.annotation
            if desc.is_list:
                base = typing.get_args(base)[0] if typing.get_args(base) else str
            name = getattr(base, "__name__", str(base))
            if desc.is_ranged:
                name = desc.ranged_type_name
            param.metavar = METAVARS.get(name, name.upper())
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


class TandemGroup(TyperGroup):
    """The root command: a usage mistake anywhere is one line on stderr and exit 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        _plain_metavars(self)
        try:
            result = super().main(args=args, prog_name=prog_name, complete_var=complete_var,
                                  standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else "")
            sys.exit(EXIT_USAGE)
        except UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            typer.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(EXIT_USAGE)
        except ClickException as exc:
            typer.echo(f"error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        finally:
            # The profile was chosen for this command only (a process may run several).
            choose_profile(None)
        code = result if isinstance(result, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tandem {cli_version()}")
        raise typer.Exit()


def _root(
    profile: Annotated[str | None, typer.Option(
        "--profile", metavar="NAME", envvar="TANDEM_PROFILE",
        help="The config file's profile to use (URLs and token); see `tandem whoami`")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the CLI's version and exit")] = False,
) -> None:
    choose_profile(profile)


def _group(name: str) -> typer.Typer:
    module = importlib.import_module(f"tandem_cli.{GROUP_MODULES.get(name, name)}")
    return getattr(module, f"{name}_app")  # type: ignore[no-any-return]


def build_app(only: str | None = None) -> typer.Typer:
    """The whole CLI, or just the command ``only`` (what ``main`` runs for one command, so a
    pipeline step imports only what it uses; ``""`` builds ``tandem`` itself, for --version)."""
    app = command_group(HELP, cls=TandemGroup, add_completion=True,
                        context_settings={"help_option_names": ["-h", "--help"]})
    app.callback()(_root)
    if only in (None, "dev"):
        from tandem_cli.dev import dev

        app.command(help=DEV_HELP)(dev)
    if only in (None, "whoami"):
        from tandem_cli.whoami import whoami

        app.command("whoami")(whoami)
    if only in (None, "login"):
        from tandem_cli.login import login

        app.command("login")(login)
    if only in (None, "token"):
        from tandem_cli.token import token_app

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


def _command_word(argv: Sequence[str]) -> str | None:
    """The first word of ``argv`` that is not an option of ``tandem`` itself."""
    words = iter(argv)
    for word in words:
        if word in ROOT_VALUE_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main() -> None:
    argv = sys.argv[1:]
    command = _command_word(argv)
    if command in (*LIGHT_GROUPS, "dev", "whoami", "login", "token"):
        build_app(command)(prog_name="tandem")
    elif command is None and "--version" in argv:
        build_app("")(prog_name="tandem")
    else:
        build_app()(prog_name="tandem")
