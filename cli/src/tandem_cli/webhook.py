"""``tandem webhook``: the notifier's subscriptions and delivery log: add, list, deliveries,
redeliver."""

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

webhook_app = command_group("Webhooks out: subscriptions to Tandem's facts and their delivery "
                            "log (the notifier).")

COLUMNS = [("NUMBER", "number"), ("STATUS", "status"), ("FORMAT", "format"), ("URL", "url"),
           ("TYPES", "types"), ("SERVICES", "services"), ("TEAMS", "teams"),
           ("MIN P", "min_priority"), ("SOURCE", "source")]
FIELDS = [("number", "number"), ("id", "id"), ("status", "status"), ("url", "url"),
          ("format", "format"), ("types", "types"), ("services", "services"),
          ("teams", "teams"), ("min priority", "min_priority"), ("source", "source"),
          ("team", "team"), ("disabled", "disabled_reason"), ("created", "created_at")]
DELIVERY_COLUMNS = [("ID", "id"), ("STATUS", "status"), ("TYPE", "event_type"),
                    ("SUBJECT", "subject"), ("SEQ", "sequence"), ("ATTEMPTS", "attempts"),
                    ("CODE", "last_status_code"), ("MS", "last_latency_ms"),
                    ("NEXT", "next_attempt_at"), ("ERROR", "last_error")]




@webhook_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The receiver (https://; a Slack incoming webhook "
                                            "with --format slack)")],
    format: Annotated[str, typer.Option("--format", help="cloudevents (the event itself) or "
                                                        "slack (a message)")] = "cloudevents",
    type_: Annotated[list[str] | None, typer.Option(
        "--type", help="An event type wanted (tandem.incident.created, tandem.incident.*); "
                       "repeat it. None: every type.")] = None,
    service: Annotated[list[str] | None, typer.Option(
        "--service", help="Only events about this service; repeat it.")] = None,
    team: Annotated[list[str] | None, typer.Option(
        "--team", help="Only events about services this team owns or runs; repeat it.")] = None,
    min_priority: Annotated[int | None, typer.Option(
        "--min-priority", min=1, max=5, help="Only events carrying this priority or a more "
                                             "urgent one (1 = P1).")] = None,
    description: Annotated[str, typer.Option(help="What it is for")] = "",
    as_json: JsonOption = False,
) -> None:
    """Subscribe a receiver; prints its signing secret, shown this once."""
    body: dict[str, Any] = {"url": url, "format": format, "types": type_ or [],
                            "services": service or [], "teams": team or [],
                            "min_priority": min_priority, "description": description}
    with reporting(as_json), Api("notifier") as api:
        created = api.post("/api/v1/subscriptions", body)
    emit(created, as_json, details(created, FIELDS) +
         f"\nsecret        {created['secret']}\n"
         "(the signing secret is not shown again: keep it where the receiver verifies "
         "webhook-signature)")


@webhook_app.command("list")
def list_subscriptions(
    status: Annotated[str | None, typer.Option(help="active or disabled")] = None,
    team: Annotated[str | None, typer.Option(help="A team's subscription (its catalog "
                                                  "notify)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Subscriptions, newest first."""
    with reporting(as_json), Api("notifier") as api:
        rows = list_all(api, "/api/v1/subscriptions", {"status": status, "team": team}, limit)
    emit(rows, as_json, table(rows, COLUMNS, empty="no subscriptions"))


@webhook_app.command("deliveries")
def deliveries(
    subscription: Annotated[str | None, typer.Argument(
        help="A subscription's number or id (default: every one)")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or failed")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first: status, attempts, last answer and latency, next try."""
    with reporting(as_json), Api("notifier") as api:
        rows = list_all(api, "/api/v1/deliveries",
                        {"subscription": subscription, "status": status}, limit)
    emit(rows, as_json, table(rows, DELIVERY_COLUMNS, empty="no deliveries"))


@webhook_app.command("redeliver")
def redeliver(
    delivery_id: Annotated[str, typer.Argument(help="The delivery's id (tandem webhook "
                                                    "deliveries)")],
    as_json: JsonOption = False,
) -> None:
    """Send a delivery again (delivered or given up), with a fresh retry window."""
    with reporting(as_json), Api("notifier") as api:
        answer = api.post(f"/api/v1/deliveries/{delivery_id}/redeliver", None)
    emit(answer, as_json, f"{answer['id']}  {answer['status']}: it goes out when its "
                          "subscription's lane reaches it")
