"""``tandem change``: request, list, approve and move change requests."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    command_group,
    details,
    emit,
    iso,
    list_all,
    number_of,
    parse_span,
    parse_when,
    reporting,
    resolve_id,
    table,
    transition,
)

change_app = command_group("Change requests: create, list, approve, reject, transition.")

COLUMNS = [("NUMBER", "number"), ("TYPE", "type"), ("STATUS", "status"), ("SERVICE", "service"),
           ("ENV", "environment"), ("START", "planned_start"), ("END", "planned_end"),
           ("TITLE", "title")]
FIELDS = [("number", "number"), ("id", "id"), ("type", "type"), ("title", "title"),
          ("status", "status"), ("service", "service"), ("environment", "environment"),
          ("risk", "risk"), ("approvals", "approvals_shown"), ("approved by", "rule_shown"),
          ("template", "template_shown"),
          ("planned start", "planned_start"), ("planned end", "planned_end"),
          ("incident", "incident_shown"), ("deployment", "deployment_shown"),
          ("close code", "close_code"), ("next", "allowed_transitions"),
          ("created", "created_at"), ("updated", "updated_at")]

Ref = Annotated[str, typer.Argument(help="Change number (CHG0000042) or id")]


def rule_line(rule: dict[str, Any] | None) -> str | None:
    """How a change is approved, in a line: the owning teams (and who approved for each), or
    any manager, with the catalog's note."""
    if not rule or rule.get("kind") == "none":
        return None
    if rule.get("kind") != "ownership":
        return str(rule.get("note") or "any manager")
    sides = [f"{s['team']} ({', '.join(s['approved_by']) or 'waiting'})"
             for s in rule.get("sides") or []]
    line = "a manager of " + " and of ".join(sides)
    return f"{line}; {rule['note']}" if rule.get("note") else line


def _show(change: dict[str, Any], as_json: bool, api: Api | None = None) -> None:
    shown = dict(change)
    if change.get("approvals_required"):
        shown["approvals_shown"] = (f"{change.get('approvals_received', 0)} of "
                                    f"{change['approvals_required']}")
    shown["rule_shown"] = rule_line(change.get("approval_rule"))
    if change.get("template_id"):
        shown["template_shown"] = change["template_id"]
        if api is not None and not as_json:
            # People read the template's number; the change carries its id.
            with contextlib.suppress(CommandError):
                template = api.get(f"/api/v1/standard-changes/{change['template_id']}")
                shown["template_shown"] = f"{template['number']} ({template['title']})"
    elif change.get("type") == "standard":
        shown["template_shown"] = "none (authorizes no deployment)"
    shown["incident_shown"] = change.get("incident_id")
    shown["deployment_shown"] = change.get("deployment_id")
    if api is not None and not as_json:
        # People read numbers; the change carries ids (kept when a service cannot say).
        shown["incident_shown"] = number_of("incidents", "incidents", change.get("incident_id"))
        shown["deployment_shown"] = number_of("deployments", "deployments",
                                              change.get("deployment_id"))
    emit(change, as_json, details(shown, FIELDS))


@change_app.command("create")
def create(
    service: Annotated[str, typer.Option(help="The service it changes")],
    title: Annotated[str | None, typer.Option(
        help="What changes, in a line (a template gives its own)")] = None,
    change_type: Annotated[str, typer.Option("--type", help="standard, normal or emergency")]
    = "normal",
    environment: Annotated[str, typer.Option(help="production, staging, ...")] = "production",
    description: Annotated[str | None, typer.Option(help="Details and plan")] = None,
    start: Annotated[str | None, typer.Option(
        help="Planned start: now, +2h or RFC 3339 (default: now)")] = None,
    end: Annotated[str | None, typer.Option(
        help="Planned end (default: start + 2h, or the template's longest window)")] = None,
    template: Annotated[str | None, typer.Option(
        help="The standard change template (STD number or id) it is recorded from")] = None,
    risk: Annotated[str | None, typer.Option(help="low, moderate, high, very_high")] = None,
    incident: Annotated[str | None, typer.Option(
        help="The incident (number or id) an emergency change fixes")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe")] = None,
    as_json: JsonOption = False,
) -> None:
    """Request a change; an emergency change names the incident it fixes, a standard change
    the template it follows (a pipeline's must)."""
    body: dict[str, Any] = {"type": change_type, "service": service,
                            "environment": environment}
    if template is None or start or end:
        planned_start = parse_when(start or "now")
        planned_end = parse_when(end) if end else planned_start + timedelta(hours=2)
        body["planned_start"] = iso(planned_start)
        if template is None or end:
            body["planned_end"] = iso(planned_end)
    if title is None and template is None:
        raise typer.BadParameter("--title is required without --template")
    for name, value in (("title", title), ("description", description), ("risk", risk)):
        if value is not None:
            body[name] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with reporting(as_json), Api("changes") as api:
        if incident:
            body["incident_id"] = resolve_id("incidents", "incidents", incident)
        if template:
            body["template_id"] = resolve_id("changes", "standard-changes", template)
        _show(api.post("/api/v1/changes", body, headers=headers), as_json, api)


@change_app.command("list")
def list_changes(
    status: Annotated[str | None, typer.Option(help="new, assess, authorize, scheduled, ...")]
    = None,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    change_type: Annotated[str | None, typer.Option("--type", help="standard, normal, emergency")]
    = None,
    environment: Annotated[str | None, typer.Option(help="production, staging, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List change requests."""
    with reporting(as_json), Api("changes") as api:
        items = list_all(api, "/api/v1/changes", {"status": status, "service": service,
                                                  "type": change_type,
                                                  "environment": environment}, limit)
    emit(items, as_json, table(items, COLUMNS, empty="no changes"))


@change_app.command("show")
def show(ref: Ref, as_json: JsonOption = False) -> None:
    """Show one change request."""
    with reporting(as_json), Api("changes") as api:
        _show(api.get(f"/api/v1/changes/{ref}"), as_json, api)


def _decide(ref: str, decision: str, comment: str, as_json: bool, force: bool = False) -> None:
    body: dict[str, Any] = {"decision": decision, "comment": comment}
    if force:
        body["force"] = True
    with reporting(as_json), Api("changes") as api:
        api.post(f"/api/v1/changes/{ref}/approvals", body)
        change = api.get(f"/api/v1/changes/{ref}")
        if decision == "approve" and change.get("status") == "authorize" and (
                change.get("approvals_received", 0) >= change.get("approvals_required", 1)):
            # Authorized but not scheduled: say why, so the manager knows what to do.
            conflicts = api.get(f"/api/v1/changes/{ref}/conflicts").get("items", [])
            for conflict in conflicts:
                typer.echo(f"conflict: {conflict.get('detail')}", err=True)
            typer.echo(f"authorized, not scheduled: resolve the conflicts, or (a manager) "
                       f"tandem change transition {change.get('number')} scheduled --force",
                       err=True)
        _show(change, as_json, api)


@change_app.command("approve")
def approve(ref: Ref, comment: Annotated[str, typer.Option(help="For the record")] = "",
            force: Annotated[bool, typer.Option(
                help="Schedule despite conflicts (freezes, overlapping changes)")] = False,
            as_json: JsonOption = False) -> None:
    """Record a manager's approval; the one that completes the count schedules the change."""
    _decide(ref, "approve", comment, as_json, force)


@change_app.command("reject")
def reject(ref: Ref, comment: Annotated[str, typer.Option(help="Why")] = "",
           as_json: JsonOption = False) -> None:
    """Record a manager's rejection (the change goes back to new)."""
    _decide(ref, "reject", comment, as_json)


@change_app.command("transition")
def move(
    ref: Ref,
    to: Annotated[str, typer.Argument(help="Target state: assess, authorize, scheduled, ...")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record")] = None,
    close_code: Annotated[str | None, typer.Option(
        help="successful, successful_with_issues, unsuccessful (for closed)")] = None,
    force: Annotated[bool, typer.Option(
        help="To scheduled despite conflicts (manager)")] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a change request along its type's path."""
    with reporting(as_json), Api("changes") as api:
        _show(transition(api, "changes", ref, to, reason, close_code=close_code,
                         force=force or None), as_json, api)


# --- the standard change catalog -----------------------------------------------------------

template_app = command_group("Standard change templates: owner-approved, per service.")
change_app.add_typer(template_app, name="template")

TEMPLATE_COLUMNS = [("NUMBER", "number"), ("STATUS", "status"), ("SERVICE", "service"),
                    ("WINDOW", "window_shown"), ("TITLE", "title")]
TEMPLATE_FIELDS = [("number", "number"), ("id", "id"), ("service", "service"),
                   ("title", "title"), ("description", "description"),
                   ("longest window", "window_shown"), ("status", "status"),
                   ("approved by", "approved_by"), ("retired", "retired_at"),
                   ("created", "created_at")]
TemplateRef = Annotated[str, typer.Argument(help="Template number (STD0000001) or id")]


def _template_shown(template: dict[str, Any]) -> dict[str, Any]:
    return {**template, "window_shown": f"{template.get('max_window_minutes')} min"}


@template_app.command("create")
def create_template(
    service: Annotated[str, typer.Option(help="The service it changes")],
    title: Annotated[str, typer.Option(help="What the standard change does")],
    max_window: Annotated[str, typer.Option(
        help="The longest window a change from it may take: 30m, 2h, 1d")] = "1h",
    description: Annotated[str, typer.Option(help="How it is done")] = "",
    as_json: JsonOption = False,
) -> None:
    """Write a template down (owner): it is approved by being written, and active."""
    minutes = int(parse_span(max_window).total_seconds() // 60)
    with reporting(as_json), Api("changes") as api:
        template = api.post("/api/v1/standard-changes", {
            "service": service, "title": title, "description": description,
            "max_window_minutes": minutes})
    emit(template, as_json, details(_template_shown(template), TEMPLATE_FIELDS))


@template_app.command("list")
def list_templates(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    status: Annotated[str | None, typer.Option(help="active or retired")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List standard change templates."""
    with reporting(as_json), Api("changes") as api:
        items = list_all(api, "/api/v1/standard-changes",
                         {"service": service, "status": status}, limit)
    emit(items, as_json, table([_template_shown(t) for t in items], TEMPLATE_COLUMNS,
                               empty="no templates"))


@template_app.command("show")
def show_template(ref: TemplateRef, as_json: JsonOption = False) -> None:
    """Show one template."""
    with reporting(as_json), Api("changes") as api:
        template = api.get(f"/api/v1/standard-changes/{ref}")
    emit(template, as_json, details(_template_shown(template), TEMPLATE_FIELDS))


@template_app.command("retire")
def retire_template(ref: TemplateRef,
                    reason: Annotated[str | None, typer.Option(help="Why")] = None,
                    as_json: JsonOption = False) -> None:
    """Retire a template (owner): no change is recorded from it any more."""
    with reporting(as_json), Api("changes") as api:
        template = transition(api, "standard-changes", ref, "retired", reason)
    emit(template, as_json, details(_template_shown(template), TEMPLATE_FIELDS))
