"""``tandem freeze``: windows in which services take no changes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    JsonOption,
    command_group,
    details,
    emit,
    iso,
    list_all,
    parse_when,
    reporting,
    table,
    transition,
)

freeze_app = command_group("Freeze windows: create, list, end early.")

COLUMNS = [("NUMBER", "number"), ("STATUS", "status"), ("SERVICES", "services"),
           ("SOURCE", "source"), ("STARTS", "starts_at"), ("ENDS", "ends_at"),
           ("REASON", "reason")]
FIELDS = [("number", "number"), ("id", "id"), ("status", "status"), ("services", "services"),
          ("source", "source"), ("incident", "incident_id"), ("starts", "starts_at"),
          ("ends", "ends_at"), ("reason", "reason")]


def _show(freeze: dict[str, Any], as_json: bool) -> None:
    if not freeze.get("services"):
        freeze = {**freeze, "services": ["(all)"]}
    emit(freeze, as_json, details(freeze, FIELDS))


@freeze_app.command("create")
def create(
    ends: Annotated[str, typer.Option(help="End: +4h or RFC 3339")],
    reason: Annotated[str, typer.Option(help="Why nothing may change")],
    service: Annotated[list[str] | None, typer.Option(
        help="A frozen service (repeat for more; none freezes every service)")] = None,
    starts: Annotated[str, typer.Option(help="Start: now, +1h or RFC 3339")] = "now",
    as_json: JsonOption = False,
) -> None:
    """Freeze some services (or all) for a window."""
    body = {"services": service or [], "starts_at": iso(parse_when(starts)),
            "ends_at": iso(parse_when(ends)), "reason": reason}
    with reporting(as_json), Api("changes") as api:
        _show(api.post("/api/v1/freezes", body), as_json)


@freeze_app.command("list")
def list_freezes(
    status: Annotated[str | None, typer.Option(help="scheduled, active or ended "
                                               "(default: active and upcoming)")] = None,
    service: Annotated[str | None, typer.Option(help="Only freezes covering this service")]
    = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List freeze windows."""
    with reporting(as_json), Api("changes") as api:
        items = list_all(api, "/api/v1/freezes", {"status": status, "service": service}, limit)
    rows = [{**f, "services": f.get("services") or ["(all)"]} for f in items]
    emit(items, as_json, table(rows, COLUMNS, empty="no freezes"))


@freeze_app.command("end")
def end(ref: Annotated[str, typer.Argument(help="Freeze number or id")],
        reason: Annotated[str | None, typer.Option(help="Why it ends early")] = None,
        as_json: JsonOption = False) -> None:
    """End a freeze now."""
    with reporting(as_json), Api("changes") as api:
        _show(transition(api, "freezes", ref, "ended", reason), as_json)
