"""``tandem incident``: list, open and work incidents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tandem_cli.api import Api, JsonOption, details, emit, list_all, reporting, table, transition

incident_app = typer.Typer(help="Incidents: list, create, acknowledge, resolve, annotate.",
                           no_args_is_help=True)

COLUMNS = [("NUMBER", "number"), ("P", "priority"), ("STATUS", "status"),
           ("SERVICE", "service"), ("ENV", "environment"), ("GROUP", "assignment_group"),
           ("CREATED", "created_at"), ("TITLE", "title")]
FIELDS = [("number", "number"), ("id", "id"), ("title", "title"), ("status", "status"),
          ("priority", "priority"), ("major", "major"), ("service", "service"),
          ("environment", "environment"), ("assignment group", "assignment_group"),
          ("assignee", "assignee"),
          ("cause deployment", "cause_deployment_id"), ("cause change", "cause_change_id"),
          ("resolution", "resolution_code"), ("next", "allowed_transitions"),
          ("created", "created_at"), ("updated", "updated_at")]

Ref = Annotated[str, typer.Argument(help="Incident number (INC0000042) or id")]


def _show(incident: dict[str, Any], as_json: bool) -> None:
    emit(incident, as_json, details(incident, FIELDS))


@incident_app.command("list")
def list_incidents(
    status: Annotated[str | None, typer.Option(help="new, acknowledged, in_progress, ...")] = None,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    environment: Annotated[str | None, typer.Option(help="production, staging, ...")] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=5, help="1 (P1) to 5")] = None,
    major: Annotated[bool | None, typer.Option("--major/--not-major",
                                               help="Only major (or only other) incidents")] = None,
    group: Annotated[str | None, typer.Option(help="Only those assigned to this team")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List incidents, newest first."""
    with reporting(as_json), Api("incidents") as api:
        params = {"status": status, "service": service, "environment": environment,
                  "priority": priority, "assignment_group": group,
                  "major": None if major is None else str(major).lower()}
        items = list_all(api, "/api/v1/incidents", params, limit)
    emit(items, as_json, table(items, COLUMNS, empty="no incidents"))


@incident_app.command("show")
def show(ref: Ref, as_json: JsonOption = False) -> None:
    """Show one incident."""
    with reporting(as_json), Api("incidents") as api:
        _show(api.get(f"/api/v1/incidents/{ref}"), as_json)


@incident_app.command("create")
def create(
    title: Annotated[str, typer.Option(help="What is wrong, in a line")],
    service: Annotated[str, typer.Option(help="The affected service")],
    impact: Annotated[int, typer.Option(min=1, max=3, help="1 high, 2 medium, 3 low")],
    urgency: Annotated[int, typer.Option(min=1, max=3, help="1 high, 2 medium, 3 low")],
    environment: Annotated[str, typer.Option(help="production, staging, ...")] = "production",
    description: Annotated[str, typer.Option(help="Details")] = "",
    assignment_group: Annotated[str | None, typer.Option(help="Team to work it")] = None,
    assignee: Annotated[str | None, typer.Option(help="Person to work it")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe")] = None,
    as_json: JsonOption = False,
) -> None:
    """Open an incident; its priority follows from impact x urgency."""
    body: dict[str, Any] = {"title": title, "description": description, "service": service,
                            "environment": environment, "impact": impact, "urgency": urgency}
    if assignment_group:
        body["assignment_group"] = assignment_group
    if assignee:
        body["assignee"] = assignee
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with reporting(as_json), Api("incidents") as api:
        _show(api.post("/api/v1/incidents", body, headers=headers), as_json)


@incident_app.command("ack")
def ack(ref: Ref, reason: Annotated[str | None, typer.Option(help="Why, for the record")] = None,
        as_json: JsonOption = False) -> None:
    """Acknowledge an incident (starts nobody's clock, stops MTTA's)."""
    with reporting(as_json), Api("incidents") as api:
        _show(transition(api, "incidents", ref, "acknowledged", reason), as_json)


@incident_app.command("resolve")
def resolve(
    ref: Ref,
    code: Annotated[str, typer.Option(
        "--code", help="solution_provided, rolled_back, resolved_by_change, known_error, ...",
    )] = "solution_provided",
    notes: Annotated[str, typer.Option(help="What fixed it")] = "",
    as_json: JsonOption = False,
) -> None:
    """Resolve an incident with a resolution code and notes."""
    with reporting(as_json), Api("incidents") as api:
        _show(transition(api, "incidents", ref, "resolved", notes or None, resolution_code=code,
                         resolution_notes=notes or None), as_json)


@incident_app.command("transition")
def move(ref: Ref, to: Annotated[str, typer.Argument(help="Target state")],
         reason: Annotated[str | None, typer.Option(help="Why, for the record")] = None,
         on_hold_reason: Annotated[str | None, typer.Option(help="For on_hold")] = None,
         as_json: JsonOption = False) -> None:
    """Move an incident to any state its lifecycle allows."""
    with reporting(as_json), Api("incidents") as api:
        _show(transition(api, "incidents", ref, to, reason, on_hold_reason=on_hold_reason),
              as_json)


@incident_app.command("note")
def note(ref: Ref, text: Annotated[str, typer.Argument(help="The note")],
         as_json: JsonOption = False) -> None:
    """Add a work note to an incident's timeline."""
    with reporting(as_json), Api("incidents") as api:
        answer = api.post(f"/api/v1/incidents/{ref}/notes", {"text": text})
    emit(answer, as_json, f"noted on {ref}")
