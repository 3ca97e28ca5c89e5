"""``tandem catalog``: who owns what. Import Backstage descriptors, list and show services
and teams."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    command_group,
    details,
    emit,
    fail,
    list_all,
    reporting,
    table,
)

catalog_app = command_group("The service catalog: import descriptors, services, teams.")
service_app = command_group("Services: who owns and who runs each.")
team_app = command_group("Teams and their members.")
catalog_app.add_typer(service_app, name="service")
catalog_app.add_typer(team_app, name="team")

SERVICE_COLUMNS = [("NAME", "name"), ("TIER", "tier"), ("OWNER", "owner_shown"),
                   ("OPERATIONS", "operations_team"), ("LIFECYCLE", "lifecycle"),
                   ("SOURCE", "source")]
SERVICE_FIELDS = [("name", "name"), ("number", "number"), ("title", "title"),
                  ("description", "description"), ("tier", "tier"), ("lifecycle", "lifecycle"),
                  ("owner team", "owner_shown"), ("operations team", "operations_team"),
                  ("repository", "repository"), ("system", "system"),
                  ("runbook", "runbook_url"), ("on call", "on_call"), ("links", "links_shown"),
                  ("source", "source"), ("created", "created_at"), ("updated", "updated_at")]
TEAM_COLUMNS = [("NAME", "name"), ("TITLE", "title"), ("MEMBERS", "members")]
TEAM_FIELDS = [("name", "name"), ("number", "number"), ("title", "title"),
               ("description", "description"), ("members", "members"),
               ("notify", "notify_shown"), ("source", "source"), ("created", "created_at"),
               ("updated", "updated_at")]
#: What a directory import reads: Backstage's usual file names and any YAML file.
PATTERNS = ("*.yaml", "*.yml")

Name = Annotated[str, typer.Argument(help="Name (payments), number or id")]


def _service_shown(service: dict[str, Any]) -> dict[str, Any]:
    shown = dict(service)
    shown["owner_shown"] = service.get("owner_team") or "(unowned)"
    shown["links_shown"] = [link.get("url") for link in service.get("links") or []]
    return shown


_TEAMS = re.compile(r"^kind:\s*[\"']?(Group|User)\b", re.MULTILINE)


def _describes_teams(path: Path) -> bool:
    try:
        return _TEAMS.search(path.read_text(errors="replace")) is not None
    except OSError:
        return False


def _descriptor_files(paths: list[Path]) -> list[Path]:
    """The files to import, a directory's teams first (so its services find them described,
    not merely named)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted({f for pattern in PATTERNS for f in path.rglob(pattern)
                            if f.is_file()})
            if not found:
                raise typer.BadParameter(f"{path} holds no .yaml or .yml file")
            files.extend(sorted(found, key=lambda f: (not _describes_teams(f), f)))
        elif path.is_file():
            files.append(path)
        else:
            raise typer.BadParameter(f"{path} is no file or directory")
    return files


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _outcome_line(name: str, result: dict[str, Any]) -> str:
    parts = []
    for kind in ("services", "teams"):
        outcome = result.get(kind) or {}
        for verb in ("created", "updated"):
            if outcome.get(verb):
                parts.append(f"{verb} {kind} {', '.join(outcome[verb])}")
    if not parts:
        counted = [_count(n, noun) for noun, n in (
            ("service", len((result.get("services") or {}).get("unchanged", []))),
            ("team", len((result.get("teams") or {}).get("unchanged", [])))) if n]
        parts.append(f"nothing changed ({' and '.join(counted) or 'nothing'} as described)")
    ignored = result.get("ignored") or []
    if ignored:
        parts.append("left out " + ", ".join(f"{i.get('kind')} {i.get('name') or ''}".strip()
                                             for i in ignored))
    return f"{name}: {'; '.join(parts)}"


@catalog_app.command("import")
def import_descriptors(
    paths: Annotated[list[Path], typer.Argument(
        help="Backstage descriptor files (catalog-info.yaml), or directories of them")],
    as_json: JsonOption = False,
) -> None:
    """Import Backstage descriptors (owner). Each file is imported whole or not at all; the
    same files again change nothing."""
    results: list[dict[str, Any]] = []
    refused = 0
    with Api("catalog") as api:
        for path in _descriptor_files(paths):
            try:
                result = api.request("POST", "/api/v1/catalog/import",
                                     content=path.read_bytes(),
                                     headers={"Content-Type": "application/yaml"})
            except CommandError as exc:
                if exc.problem is None:
                    fail(exc.message, exit_code=exc.exit_code)
                refused += 1
                results.append({"file": str(path), "problem": exc.problem})
                errors = exc.problem.get("errors") or []
                head = (f"{exc.problem.get('status')} {exc.problem.get('title')}: nothing was "
                        "imported" if errors else exc.message)
                typer.echo(f"error: {path}: {head}", err=True)
                for error in errors:
                    named = f" ({error.get('name')})" if error.get("name") else ""
                    where = f"{error.get('field')}: " if error.get("field") else ""
                    typer.echo(f"  document {error.get('document')}{named}: {where}"
                               f"{error.get('message')}", err=True)
                continue
            results.append({"file": str(path), "result": result})
            if not as_json:
                typer.echo(_outcome_line(str(path), result))
    if as_json:
        emit(results, True, "")
    if refused:
        raise typer.Exit(1)


@service_app.command("list")
def list_services(
    team: Annotated[str | None, typer.Option(help="Owned or run by this team")] = None,
    unowned: Annotated[bool | None, typer.Option("--unowned/--owned",
                                                 help="Only unowned (or owned) ones")] = None,
    tier: Annotated[int | None, typer.Option(min=1, max=4, help="1 (most critical) to 4")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    as_json: JsonOption = False,
) -> None:
    """List the catalog's services (an unowned one shows as such)."""
    params = {"team": team, "tier": tier,
              "unowned": None if unowned is None else str(unowned).lower()}
    with reporting(as_json), Api("catalog") as api:
        items = list_all(api, "/api/v1/services", params, limit)
    emit(items, as_json, table([_service_shown(s) for s in sorted(items, key=lambda s: s["name"])],
                               SERVICE_COLUMNS, empty="no services"))


@service_app.command("show")
def show_service(name: Name, as_json: JsonOption = False) -> None:
    """Show one service: who owns it, who runs it, where its runbook is."""
    with reporting(as_json), Api("catalog") as api:
        service = api.get(f"/api/v1/services/{name}")
    emit(service, as_json, details(_service_shown(service), SERVICE_FIELDS))


@team_app.command("list")
def list_teams(
    member: Annotated[str | None, typer.Option(help="Only teams this person is in")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 200,
    as_json: JsonOption = False,
) -> None:
    """List the catalog's teams."""
    with reporting(as_json), Api("catalog") as api:
        items = list_all(api, "/api/v1/teams", {"member": member}, limit)
    emit(items, as_json, table(sorted(items, key=lambda t: t["name"]), TEAM_COLUMNS,
                               empty="no teams"))


@team_app.command("show")
def show_team(name: Name, as_json: JsonOption = False) -> None:
    """Show one team and its members."""
    with reporting(as_json), Api("catalog") as api:
        team = api.get(f"/api/v1/teams/{name}")
    shown = dict(team)
    if team.get("notify"):
        shown["notify_shown"] = f"{team['notify']['format']} {team['notify']['url']}"
    emit(team, as_json, details(shown, TEAM_FIELDS))
