"""``tandem import deployments|incidents FILE``: a team's history, so DORA, MTTA and MTTR mean
something on day one.

A file is JSON lines or CSV (by its ``.csv`` name, else by its first character), read as a
stream and sent in batches; a PagerDuty incidents export is taken with its own columns
(``id``, ``description``, ``service_name``, ``urgency``, ``priority``, ``created_on``,
``resolved_on``, ``seconds_to_first_ack``...). A bad line is rejected with its line number and
the rest is imported; importing the same file again skips what is already there. On a
terminal a progress bar runs on stderr; the summary ends it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from tandem.vocabulary import as_name
from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    command_group,
    emit,
    fail,
    stderr_is_terminal,
)

import_app = command_group("Bring history in: past deployments and incidents.")

FileArgument = Annotated[Path, typer.Argument(
    exists=True, dir_okay=False, readable=True, metavar="FILE", help="JSON lines or CSV")]
BatchOption = Annotated[int, typer.Option("--batch", min=1, max=1000,
                                          help="Records per request")]

#: Where each kind of record goes.
TARGETS = {"deployments": ("deployments", "/api/v1/imports/deployments"),
           "incidents": ("incidents", "/api/v1/imports/incidents")}


def _key(name: str) -> str:
    """A column's name as a field's: ``Created On`` -> ``created_on``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _first(row: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            return value
    return None


def _time(value: Any) -> str | None:
    """An export's time as RFC 3339 (``2024-05-01 10:00:00 UTC`` and ``...Z`` included);
    anything else is passed on for the service to refuse by name."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" UTC", "+00:00").replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return value
    return moment.astimezone(UTC).isoformat() if moment.tzinfo else value


def _later(start: str | None, seconds: Any) -> str | None:
    try:
        return (datetime.fromisoformat(start) + timedelta(seconds=float(seconds))).isoformat() \
            if start and seconds not in (None, "") else None
    except ValueError:
        return None


def _slug(name: Any) -> Any:
    if not isinstance(name, str):
        return name
    return as_name(name) or name


def deployment_record(row: dict[str, Any]) -> dict[str, Any]:
    """A line of deployment history as the service takes it (CSV columns by their names;
    ``commits`` as JSON, or ``commit_sha`` and ``committed_at`` for one commit)."""
    row = {_key(k): v for k, v in row.items() if isinstance(k, str)}
    commits = row.get("commits")
    if isinstance(commits, str) and commits.strip():
        try:
            commits = json.loads(commits)
        except ValueError:
            pass
    if not commits and row.get("commit_sha"):
        commits = [{"sha": row["commit_sha"], "committed_at": row.get("committed_at")}]
    if isinstance(commits, list):
        commits = [{**c, "committed_at": _time(c.get("committed_at"))}
                   if isinstance(c, dict) else c for c in commits]
    record = {
        "external_id": str(_first(row, "external_id", "id", "deployment_id") or ""),
        "service": _first(row, "service", "service_name"),
        "environment": _first(row, "environment") or "production",
        "version": str(_first(row, "version", "software_version") or ""),
        "status": _first(row, "status"),
        "started_at": _time(_first(row, "started_at")),
        "finished_at": _time(_first(row, "finished_at", "deployed_at")),
        "rolled_back_at": _time(_first(row, "rolled_back_at")),
        "commits": commits or [],
        "artifact": _first(row, "artifact"), "ref": _first(row, "ref"),
    }
    return {k: v for k, v in record.items() if v not in (None, "")}


_PRIORITY = re.compile(r"^p?([1-5])\b", re.IGNORECASE)


def incident_record(row: dict[str, Any]) -> dict[str, Any]:
    """A line of incident history as the service takes it; a PagerDuty export's columns are
    read as they are (``description`` is its title, ``urgency`` high/low stands for a missing
    priority as P2/P4, ``seconds_to_first_ack``/``seconds_to_resolve`` give the times)."""
    row = {_key(k): v for k, v in row.items() if isinstance(k, str)}
    priority: Any = _first(row, "priority", "priority_name")
    if isinstance(priority, str) and (match := _PRIORITY.match(priority.strip())):
        priority = int(match.group(1))
    if priority in (None, ""):
        urgency = str(row.get("urgency") or "").lower()
        priority = {"high": 2, "low": 4}.get(urgency, 3)
    reported = _time(_first(row, "reported_at", "created_at", "created_on"))
    record = {
        "external_id": str(_first(row, "external_id", "id", "incident_id", "incident_number")
                           or ""),
        "title": _first(row, "title", "summary", "description"),
        "description": _first(row, "details", "body") or "",
        "service": _slug(_first(row, "service", "service_name")),
        "environment": _first(row, "environment") or "production",
        "priority": priority,
        "reported_at": reported,
        "acknowledged_at": _time(_first(row, "acknowledged_at", "acknowledged_on",
                                        "first_acknowledged_at"))
        or _later(reported, row.get("seconds_to_first_ack")),
        "resolved_at": _time(_first(row, "resolved_at", "resolved_on"))
        or _later(reported, row.get("seconds_to_resolve")),
        "closed_at": _time(_first(row, "closed_at")),
        "assignment_group": _slug(_first(row, "assignment_group", "team_name", "team")),
    }
    if isinstance(record["title"], str):
        record["title"] = record["title"][:200]
    return {k: v for k, v in record.items() if v not in (None, "")}


def _is_csv(path: Path, head: str) -> bool:
    return path.suffix.lower() == ".csv" or not head.lstrip().startswith(("{", "["))


def read_lines(handle: IO[str], path: Path
               ) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """``(line number, record as read, why it could not be read)`` for each record."""
    head = handle.read(4096)
    handle.seek(0)
    if _is_csv(path, head):
        reader = csv.DictReader(handle)
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield reader.line_num, dict(row), None
        return
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield number, None, f"not JSON ({exc.msg})"
            continue
        if not isinstance(value, dict):
            yield number, None, "not a JSON object"
            continue
        yield number, value, None


def import_history(kind: str, path: Path, batch: int, as_json: bool) -> None:
    service, endpoint = TARGETS[kind]
    shape = deployment_record if kind == "deployments" else incident_record
    total = path.stat().st_size
    summary: dict[str, Any] = {"imported": 0, "skipped": 0, "rejected": []}
    pending: list[dict[str, Any]] = []
    # The bar only on a terminal (a CI log gets the summary alone).
    shown = stderr_is_terminal() and not as_json
    bar = typer.progressbar(length=total, label=f"importing {kind}",
                            file=sys.stderr if shown else io.StringIO())

    def send(api: Api) -> None:
        if not pending:
            return
        answer = api.post(endpoint, {"records": pending}, attempts=3)
        summary["imported"] += answer["imported"]
        summary["skipped"] += answer["skipped"]
        summary["rejected"].extend(answer["rejected"])
        pending.clear()

    try:
        with Api(service, timeout=120) as api, path.open(encoding="utf-8-sig",
                                                         newline="") as handle, bar:
            last = 0
            for number, raw, problem in read_lines(handle, path):
                if problem is not None or raw is None:
                    summary["rejected"].append({"line": number, "errors": [problem]})
                else:
                    pending.append({"line": number, "record": shape(raw)})
                if len(pending) >= batch:
                    send(api)
                    position = _position(handle, total)
                    bar.update(position - last)
                    last = position
            send(api)
            bar.update(total - last)
    except CommandError as exc:
        fail(f"{path}: {exc.message} (imported {summary['imported']} before it)",
             problem=exc.problem if as_json else None, exit_code=exc.exit_code)
    summary["rejected"].sort(key=lambda r: r["line"])
    rejected = summary["rejected"]
    human = (f"{path}: imported {summary['imported']}, skipped {summary['skipped']} (already "
             f"there), rejected {len(rejected)}")
    emit(summary, as_json, human)
    if not as_json:
        for r in rejected:
            typer.echo(f"  line {r['line']}: {'; '.join(map(str, r['errors']))}", err=True)
    if rejected:
        raise typer.Exit(1)


def _position(handle: IO[str], total: int) -> int:
    try:
        return min(total, handle.buffer.tell())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return 0


@import_app.command("deployments")
def import_deployments(path: FileArgument, batch: BatchOption = 500,
                       as_json: JsonOption = False) -> None:
    """Import past deployments (manager): external_id, service, environment, version,
    status (succeeded|failed|rolled_back|canceled), started_at, finished_at, commits."""
    import_history("deployments", path, batch, as_json)


@import_app.command("incidents")
def import_incidents(path: FileArgument, batch: BatchOption = 500,
                     as_json: JsonOption = False) -> None:
    """Import past incidents (manager): external_id, title, service, priority, reported_at,
    acknowledged_at, resolved_at; or a PagerDuty incidents export as it is."""
    import_history("incidents", path, batch, as_json)
