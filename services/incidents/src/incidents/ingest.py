"""Monitor ingest: ``POST /v2/enqueue``, compatible with the PagerDuty Events API v2.

A monitor that speaks PagerDuty points at Tandem unchanged: it authenticates with its
routing key (mapped to a service by ``TANDEM_INCIDENTS_ROUTING_KEYS``) and gets PagerDuty's
answers: 202 ``{"status": "success", ...}`` once the event is recorded (applied right after,
in order, by :mod:`incidents.monitor_events`), or 400 ``{"status": "invalid event", ...}``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from incidents import monitor_events
from incidents.config import Settings
from tandem.app import Runtime
from tandem.pagerduty import describe, inline_schema, invalid

router = APIRouter(tags=["monitor ingest"])


class AlertPayload(BaseModel):
    # PagerDuty ignores fields it does not know; so do we.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    summary: str = Field(min_length=1, max_length=1024)
    source: str = Field(min_length=1, max_length=255)
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: str | None = Field(default=None, max_length=64)
    component: str | None = Field(default=None, max_length=255)
    group: str | None = Field(default=None, max_length=255)
    class_: str | None = Field(default=None, alias="class", max_length=255)
    custom_details: Any = None


class MonitorEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    routing_key: str = Field(min_length=1, max_length=255)
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str | None = Field(default=None, min_length=1, max_length=255)
    payload: AlertPayload | None = None
    client: str | None = Field(default=None, max_length=255)
    client_url: str | None = Field(default=None, max_length=2048)
    links: list[dict[str, Any]] | None = None
    images: list[dict[str, Any]] | None = None


def accepted(dedup_key: str, message: str = "Event processed") -> JSONResponse:
    """PagerDuty's 202 answer."""
    return JSONResponse({"status": "success", "message": message, "dedup_key": dedup_key},
                        status_code=202)


@router.post(
    "/v2/enqueue", status_code=202,
    summary="Send a monitor event (PagerDuty Events API v2)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": inline_schema(MonitorEvent)}}}},
    responses={400: {"description": "Invalid event, in PagerDuty's shape"}},
)
async def enqueue(request: Request, settings: Settings, runtime: Runtime) -> JSONResponse:
    """Accept a monitor event: 202 once it is recorded. Applied in order right after: a
    trigger opens an incident or counts on the open one with the same dedup key (repeats
    coalesced); acknowledge and resolve move the open incident with that key."""
    body = await request.body()
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return invalid(["Could not parse the request body as JSON"], status="invalid request")
    if b"\\u0000" in body:
        return invalid(["The event must not contain NUL characters"])
    if not isinstance(raw, dict):
        return invalid(["The event must be a JSON object"])
    try:
        event = MonitorEvent.model_validate(raw)
    except ValidationError as exc:
        return invalid(describe(exc))
    route = settings.routes().get(event.routing_key)
    if route is None:
        return invalid(["'routing_key' is not a routing key of any Tandem service "
                        "(TANDEM_INCIDENTS_ROUTING_KEYS)"])
    service_name, environment = route
    actor = f"monitor:{(event.client or event.routing_key[:8])}"[:255]
    alert = None
    if event.event_action == "trigger":
        if event.payload is None:
            return invalid(["'payload' is required for a trigger"])
        dedup_key = event.dedup_key or uuid.uuid4().hex
        alert = alert_of(event, event.payload, dedup_key)
        try:
            monitor_events.incident_body(service_name, environment, alert)
        except ValidationError as exc:
            return invalid(describe(exc))
    elif event.dedup_key is None:
        return invalid([f"'dedup_key' is required for {event.event_action}"])
    else:
        dedup_key = event.dedup_key
    # Recorded, answered; applied by the applier right after (incidents.monitor_events).
    await monitor_events.record(runtime.db, service=service_name, environment=environment,
                                action=event.event_action, dedup_key=dedup_key, actor=actor,
                                alert=alert)
    return accepted(dedup_key)


def alert_of(event: MonitorEvent, payload: AlertPayload, dedup_key: str) -> dict[str, Any]:
    """What a trigger's incident and notes keep of it (fields it was sent without left out)."""
    alert = {
        "summary": payload.summary, "source": payload.source, "severity": payload.severity,
        "timestamp": payload.timestamp, "component": payload.component, "group": payload.group,
        "class": payload.class_, "custom_details": payload.custom_details,
        "dedup_key": dedup_key, "client": event.client, "client_url": event.client_url,
        "links": event.links, "images": event.images,
    }
    return {k: v for k, v in alert.items() if v is not None}
