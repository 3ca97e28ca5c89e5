"""``tandem review``: post-incident reviews: show, export, action items."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    JsonOption,
    command_group,
    details,
    emit,
    list_all,
    reporting,
    table,
)

review_app = command_group("Post-incident reviews: list, show, export, add action items.")
action_app = command_group("A review's action items: add, list.")
review_app.add_typer(action_app, name="action")

COLUMNS = [("NUMBER", "number"), ("INCIDENT", "incident_number"), ("P", "priority"),
           ("STATUS", "status"), ("SERVICE", "service"), ("OWNER", "owner_team"),
           ("DUE", "due_at"), ("TITLE", "incident_title")]
FIELDS = [("number", "number"), ("id", "id"), ("incident", "incident_number"),
          ("title", "incident_title"), ("priority", "priority"), ("service", "service"),
          ("status", "status"), ("owned by", "owner_team"), ("with", "participant_team"),
          ("due", "due_at"), ("completed", "completed_at"),
          ("on time", "completed_on_time"), ("breached", "breached_at"),
          ("cause", "cause.status"), ("next", "allowed_transitions")]
ACTION_COLUMNS = [("NUMBER", "number"), ("STATUS", "status"), ("TEAM", "team"),
                  ("CHANGE", "change_number"), ("CLOSED BY", "closed_by_deployment_number"),
                  ("TITLE", "title")]

Ref = Annotated[str, typer.Argument(help="Review number (PIR0000001), id, or its incident's "
                                         "number (INC0000042)")]


def _rendering(review: dict[str, Any]) -> str:
    lines = [details(review, FIELDS), "", f"Timeline ({len(review.get('timeline') or [])})"]
    lines += ["  " + line for line in table(
        review.get("timeline") or [], [("AT", "time"), ("KIND", "kind"), ("REF", "ref"),
                                       ("WHAT", "text")], empty="none").splitlines()]
    lines += ["", "Value stream of the failure"]
    lines += ["  " + line for line in table(
        review.get("stream") or [], [("STAGE", "label"), ("HELD BY", "team"),
                                     ("WAIT S", "wait_s"), ("WORK S", "work_s")],
        empty="none").splitlines()]
    factors = review.get("factors") or []
    lines += ["", f"Contributing factors ({len(factors)})"]
    lines += ["  " + line for line in table(
        factors, [("BY", "added_by"), ("FACTOR", "text")], empty="none").splitlines()]
    actions = review.get("actions") or []
    lines += ["", f"Action items ({len(actions)})"]
    lines += ["  " + line for line in table(actions, ACTION_COLUMNS,
                                            empty="none").splitlines()]
    return "\n".join(lines)


@review_app.command("list")
def list_reviews(
    status: Annotated[str | None, typer.Option(help="open, in_progress or completed")] = None,
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    team: Annotated[str | None, typer.Option(help="Reviews this team owns or takes part in")
                    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List post-incident reviews."""
    with reporting(as_json), Api("incidents") as api:
        items = list_all(api, "/api/v1/reviews",
                         {"status": status, "service": service, "team": team}, limit)
    emit(items, as_json, table(items, COLUMNS, empty="no reviews"))


@review_app.command("show")
def show(ref: Ref, as_json: JsonOption = False) -> None:
    """Show a review: its timeline, the failure's value stream, factors and action items."""
    with reporting(as_json), Api("incidents") as api:
        review = api.get(f"/api/v1/reviews/{ref}")
    emit(review, as_json, _rendering(review))


@review_app.command("export")
def export(ref: Ref,
           output: Annotated[typer.FileTextWrite | None, typer.Option(
               "--output", "-o", help="Write it to this file (default: standard output)")
                             ] = None) -> None:
    """The review as Markdown."""
    with reporting(False), Api("incidents") as api:
        response = api.client.get(f"/api/v1/reviews/{ref}/export",
                                  headers={"Accept": "text/markdown"})
        if response.status_code >= 400:
            api.get(f"/api/v1/reviews/{ref}")  # raises the problem, as every command shows it
            response.raise_for_status()
    (output.write if output else typer.echo)(response.text.rstrip("\n") + (
        "\n" if output else ""))


@review_app.command("factor")
def factor(ref: Ref, text: Annotated[str, typer.Argument(help="The contributing factor")],
           as_json: JsonOption = False) -> None:
    """Add a contributing factor."""
    with reporting(as_json), Api("incidents") as api:
        review = api.post(f"/api/v1/reviews/{ref}/factors", {"text": text})
    emit(review, as_json, f"factor added to {review.get('number')}")


@review_app.command("complete")
def complete(ref: Ref, reason: Annotated[str, typer.Option(help="For the record")] = "",
             as_json: JsonOption = False) -> None:
    """Complete a review."""
    with reporting(as_json), Api("incidents") as api:
        review = api.post(f"/api/v1/reviews/{ref}/transitions",
                          {"to": "completed", "reason": reason})
    emit(review, as_json, _rendering(review))


@action_app.command("add")
def add_action(
    ref: Ref,
    title: Annotated[str, typer.Argument(help="What is to be done")],
    team: Annotated[str | None, typer.Option(help="Who does it (default: the owner team)")
                    ] = None,
    change: Annotated[str | None, typer.Option(
        help="A change (CHG number or id) whose production deployment closes the item")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Makes a retry safe")] = None,
    as_json: JsonOption = False,
) -> None:
    """Add an action item; with --change it closes itself once that change is deployed."""
    body: dict[str, Any] = {"title": title}
    if team:
        body["team"] = team
    if change:
        body["change"] = change
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    with reporting(as_json), Api("incidents") as api:
        action = api.post(f"/api/v1/reviews/{ref}/actions", body, headers=headers)
    emit(action, as_json, details(action, [
        ("number", "number"), ("title", "title"), ("team", "team"),
        ("change", "change_number"), ("status", "status")]))


@action_app.command("list")
def list_actions(ref: Ref, as_json: JsonOption = False) -> None:
    """A review's action items."""
    with reporting(as_json), Api("incidents") as api:
        items = api.get(f"/api/v1/reviews/{ref}/actions")
    emit(items, as_json, table(items, ACTION_COLUMNS, empty="no action items"))
