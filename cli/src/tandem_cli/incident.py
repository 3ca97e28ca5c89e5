"""``tandem incident``: list, open and work incidents."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    JsonOption,
    command_group,
    details,
    emit,
    list_any_of,
    number_of,
    reporting,
    table,
    transition,
)

incident_app = command_group("Incidents: list, show, create, acknowledge, assign, resolve, note.")

COLUMNS = [("NUMBER", "number"), ("P", "priority"), ("STATUS", "status"),
           ("SERVICE", "service"), ("ENV", "environment"), ("GROUP", "assignment_group"),
           ("CREATED", "created_at"), ("TITLE", "title")]
FIELDS = [("number", "number"), ("id", "id"), ("title", "title"), ("status", "status"),
          ("priority", "priority"), ("major", "major"), ("service", "service"),
          ("environment", "environment"), ("assignment group", "assignment_group"),
          ("assignee", "assignee"),
          ("cause deployment", "cause_deployment"), ("cause change", "cause_change"),
          ("cause", "cause_status"), ("on hold", "on_hold_reason"),
          ("resolution", "resolution_code"), ("notes", "resolution_notes"),
          ("next", "allowed_transitions"), ("reported", "reported_at"),
          ("acknowledged", "acknowledged_at"), ("mitigated", "mitigated_at"),
          ("resolved", "resolved_at"), ("closed", "closed_at"),
          ("created", "created_at"), ("updated", "updated_at")]
#: Acknowledging again is a no-op in these states, as PagerDuty has it.
ACKNOWLEDGED = {"acknowledged", "in_progress", "on_hold"}
RESOLVED = {"resolved", "closed"}

Ref = Annotated[str, typer.Argument(help="Incident number (INC0000042) or id")]


def _show(incident: dict[str, Any], as_json: bool) -> None:
    emit(incident, as_json, details(incident, FIELDS))


def _sla_line(label: str, due: Any, met: Any, breached: Any) -> str:
    text = f"  {label:<11} due {_cell_time(due)}" if due else f"  {label:<11} no target"
    if breached:
        text += f", breached {_cell_time(breached)}"
    elif met:
        text += f", met {_cell_time(met)}"
    return text


def _cell_time(value: Any) -> str:
    return details({"t": value}, [("t", "t")]).split(None, 1)[-1]


def _full_rendering(incident: dict[str, Any]) -> str:
    """The incident, its SLA clocks, suspects, notes and timeline, for a person."""
    lines = [details(incident, FIELDS), "", "SLA"]
    lines.append(_sla_line("response", incident.get("response_due_at"),
                           incident.get("acknowledged_at"), incident.get("response_breached_at")))
    lines.append(_sla_line("resolution", incident.get("resolution_due_at"),
                           incident.get("resolved_at"), incident.get("resolution_breached_at")))
    suspects = incident.get("suspects") or []
    lines += ["", f"Suspects ({len(suspects)})"]
    lines += ["  " + line for line in table(
        suspects, [("NUMBER", "number"), ("KIND", "kind"), ("STATUS", "status"),
                   ("VERSION", "version"), ("AT", "at"), ("TITLE", "title")],
        empty="none in the window before it opened").splitlines()]
    notes = incident.get("notes") or []
    lines += ["", f"Notes ({len(notes)})"]
    lines += ["  " + line for line in table(
        notes, [("AT", "created_at"), ("BY", "author"), ("NOTE", "text")],
        empty="none").splitlines()]
    timeline = incident.get("timeline") or []
    lines += ["", f"Timeline ({len(timeline)})"]
    lines += ["  " + line for line in table(
        [{**e, "type": str(e.get("type", "")).removeprefix("tandem.incident."),
          "what": _what(e)} for e in timeline],
        [("AT", "time"), ("#", "sequence"), ("BY", "actor"), ("EVENT", "type"),
         ("WHAT", "what")], empty="none").splitlines()]
    return "\n".join(lines)


def _what(entry: dict[str, Any]) -> str:
    data = entry.get("data") or {}
    if "from" in data and "to" in data:
        return f"{data['from']} -> {data['to']}"
    if "text" in data:
        return str(data["text"])
    return ""


@incident_app.command("list")
def list_incidents(
    status: Annotated[list[str] | None, typer.Option(
        help="new, acknowledged, in_progress, on_hold, resolved, closed; repeat for any of "
        "several")] = None,
    service: Annotated[list[str] | None, typer.Option(help="Only this service; repeatable")] = None,
    environment: Annotated[list[str] | None, typer.Option(
        help="production, staging, ...; repeatable")] = None,
    priority: Annotated[list[int] | None, typer.Option(
        min=1, max=5, help="1 (P1) to 5; repeatable")] = None,
    major: Annotated[bool | None, typer.Option("--major/--not-major",
                                               help="Only major (or only other) incidents")] = None,
    group: Annotated[list[str] | None, typer.Option(
        help="Only those assigned to this team; repeatable")] = None,
    assignee: Annotated[str | None, typer.Option(help="Only those assigned to this person")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List incidents, newest first."""
    with reporting(as_json), Api("incidents") as api:
        params = {"status": status or None, "service": service or None,
                  "environment": environment or None, "priority": priority or None,
                  "assignment_group": group or None, "assignee": assignee,
                  "major": None if major is None else str(major).lower()}
        items = list_any_of(api, "/api/v1/incidents", params, limit)
    emit(items, as_json, table(items, COLUMNS, empty="no incidents"))


@incident_app.command("show")
def show(ref: Ref, as_json: JsonOption = False) -> None:
    """Show one incident with its SLA clocks, suspects, notes and timeline."""
    with reporting(as_json), Api("incidents") as api:
        incident = api.get(f"/api/v1/incidents/{ref}")
        path = f"/api/v1/incidents/{incident['id']}"
        timeline: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = api.get(f"{path}/timeline", params={"cursor": cursor})
            timeline += page.get("items", [])
            if not (cursor := page.get("next_cursor")):
                break
        incident = {**incident,
                    "cause_deployment": number_of("deployments", "deployments",
                                                  incident.get("cause_deployment_id")),
                    "cause_change": number_of("changes", "changes",
                                              incident.get("cause_change_id")),
                    "suspects": api.get(f"{path}/suspects").get("items", []),
                    "notes": api.get(f"{path}/notes").get("items", []),
                    "timeline": timeline}
    emit(incident, as_json, _full_rendering(incident))


@incident_app.command("assign")
def assign(
    ref: Ref,
    to: Annotated[str | None, typer.Option("--to", help="The person to work it")] = None,
    group: Annotated[str | None, typer.Option(help="The team to work it")] = None,
    as_json: JsonOption = False,
) -> None:
    """Assign an incident to a person, a team, or both."""
    if to is None and group is None:
        raise typer.BadParameter("name --to PERSON, --group TEAM or both", param_hint="--to")
    body = {k: v for k, v in (("assignee", to), ("assignment_group", group)) if v is not None}
    with reporting(as_json), Api("incidents") as api:
        _show(api.request("PATCH", f"/api/v1/incidents/{ref}", json_body=body), as_json)


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
    """Acknowledge an incident (stops its response clock); again is a no-op."""
    with reporting(as_json), Api("incidents") as api:
        current = api.get(f"/api/v1/incidents/{ref}")
        if current.get("status") in ACKNOWLEDGED:
            _already(current, "acknowledged", as_json)
            return
        _show(transition(api, "incidents", current["id"], "acknowledged", reason), as_json)


def _already(incident: dict[str, Any], what: str, as_json: bool) -> None:
    """A repeated acknowledge or resolve: nothing to do, said on stderr, the incident shown."""
    typer.echo(f"{incident.get('number')} is already {what} ({incident.get('status')}); "
               "nothing changed", err=True)
    _show(incident, as_json)


@incident_app.command("resolve")
def resolve(
    ref: Ref,
    code: Annotated[str, typer.Option(
        "--code", help="solution_provided, rolled_back, resolved_by_change, known_error, ...",
    )] = "solution_provided",
    notes: Annotated[str, typer.Option(help="What fixed it")] = "",
    as_json: JsonOption = False,
) -> None:
    """Resolve an incident with a resolution code and notes; again is a no-op."""
    with reporting(as_json), Api("incidents") as api:
        current = api.get(f"/api/v1/incidents/{ref}")
        if current.get("status") in RESOLVED:
            _already(current, "resolved", as_json)
            return
        _show(transition(api, "incidents", current["id"], "resolved", notes or None,
                         resolution_code=code, resolution_notes=notes or None), as_json)


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
