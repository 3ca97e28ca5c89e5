"""``tandem dlq``: the dead letters of each consuming service: list, show, replay, discard."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tandem.settings import SERVICES
from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    command_group,
    details,
    emit,
    reporting,
    table,
)

dlq_app = command_group("Dead letters: messages a service's consumers could not apply.")

#: The services with consumers (the dashboard keeps no dead letters).
CONSUMING = tuple(name for name in SERVICES if name != "dashboard")
COLUMNS = [("SERVICE", "service"), ("ID", "id"), ("STATUS", "status"), ("TYPE", "event_type"),
           ("SUBJECT", "subject"), ("ERROR", "error_type"), ("AT", "created_at")]
FIELDS = [("id", "id"), ("service", "service"), ("consumer", "consumer"), ("status", "status"),
          ("origin", "origin"), ("event", "event_id"), ("type", "event_type"),
          ("subject", "subject"), ("sequence", "sequence"), ("error", "error_type"),
          ("message", "error"), ("attempts", "attempts"), ("note", "note"),
          ("created", "created_at"), ("resolved", "resolved_at"), ("by", "resolved_by")]

ServiceOption = Annotated[str, typer.Option(help=f"The consuming service: {', '.join(CONSUMING)}")]
LetterId = Annotated[str, typer.Argument(help="The dead letter's id")]


def _check(service: str) -> None:
    if service not in CONSUMING:
        raise CommandError(f"unknown service {service}: use {', '.join(CONSUMING)}",
                           exit_code=2)


def _shown(letter: dict[str, Any], service: str) -> dict[str, Any]:
    return {**letter, "service": service,
            "origin": f"{letter.get('topic')}:{letter.get('partition')}:{letter.get('offset')}"}


@dlq_app.command("list")
def list_letters(
    service: Annotated[str | None, typer.Option(
        help="One consuming service (default: every one)")] = None,
    status: Annotated[str, typer.Option(
        help="open (dead and held), dead, held, replayed or discarded")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Dead letters, newest first, with their error."""
    rows: list[dict[str, Any]] = []
    with reporting(as_json):
        if service is not None:
            _check(service)
        for name in [service] if service else CONSUMING:
            with Api(name) as api:
                page = api.get("/api/v1/dead-letters", params={"status": status, "limit": limit})
            rows += [_shown(item, name) for item in page["items"]]
    emit(rows, as_json, table(rows, COLUMNS, empty="no dead letters"))


@dlq_app.command("show")
def show(letter_id: LetterId, service: ServiceOption, as_json: JsonOption = False) -> None:
    """One dead letter with its message and headers."""
    with reporting(as_json):
        _check(service)
        with Api(service) as api:
            letter = _shown(api.get(f"/api/v1/dead-letters/{letter_id}"), service)
    emit(letter, as_json, details(letter, FIELDS))


@dlq_app.command("replay")
def replay(letter_id: LetterId, service: ServiceOption, as_json: JsonOption = False) -> None:
    """Apply the message again (after a fix); prints what it did."""
    with reporting(as_json):
        _check(service)
        with Api(service) as api:
            answer = api.post(f"/api/v1/dead-letters/{letter_id}/replay", None)
    emit(answer, as_json, f"{letter_id}  replayed: {answer['outcome']}")


@dlq_app.command("discard")
def discard(letter_id: LetterId, service: ServiceOption,
            reason: Annotated[str, typer.Option(help="Why it is discarded (kept with it)")],
            as_json: JsonOption = False) -> None:
    """Discard the message, keeping the reason."""
    with reporting(as_json):
        _check(service)
        with Api(service) as api:
            letter = api.request("DELETE", f"/api/v1/dead-letters/{letter_id}",
                                 params={"reason": reason})
    emit(letter, as_json, f"{letter_id}  discarded: {reason}")
