"""Monitor ingest: ``POST /v2/enqueue``, compatible with the PagerDuty Events API v2.

A monitor that speaks PagerDuty points at Tandem unchanged: it authenticates with its
routing key (mapped to a service by ``TANDEM_INCIDENTS_ROUTING_KEYS``) and gets PagerDuty's
answers: 202 ``{"status": "success", ...}``, or 400 ``{"status": "invalid event", ...}``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.config import IncidentsSettings, Settings
from incidents.incident import incidents, move_incident, open_incident, raise_priority
from incidents.models import Incident
from incidents.notes import add_note
from incidents.rules.lifecycle import LIFECYCLE, OPEN_STATES, ResolutionCode, Status
from incidents.rules.policy import SEVERITY_IMPACT_URGENCY
from incidents.schemas import Environment, IncidentCreate, Source, TransitionRequest
from tandem.app import Session
from tandem.pagerduty import describe, inline_schema, invalid
from tandem.tables import NumberSequence

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
async def enqueue(request: Request, session: Session, settings: Settings) -> JSONResponse:
    """Trigger opens an incident or appends to the open one with the same dedup key;
    acknowledge and resolve move the open incident with that key."""
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
    if event.event_action == "trigger":
        if event.payload is None:
            return invalid(["'payload' is required for a trigger"])
        dedup_key = event.dedup_key or uuid.uuid4().hex
        await trigger(session, settings, event, event.payload, service_name, environment,
                      dedup_key, actor)
        return accepted(dedup_key)
    if event.dedup_key is None:
        return invalid([f"'dedup_key' is required for {event.event_action}"])
    incident = await open_incident_with_key(session, service_name, event.dedup_key)
    if incident is not None:
        to = "acknowledged" if event.event_action == "acknowledge" else "resolved"
        if to == "resolved" and incident.status == "on_hold":
            # The condition cleared: whatever the incident waited for no longer matters.
            await monitor_move(session, settings, incident, "in_progress", event, actor)
        # An incident someone already works on stays where it is on a late acknowledge.
        if LIFECYCLE.can(incident.status, to):
            await monitor_move(session, settings, incident, to, event, actor)
    return accepted(event.dedup_key)


async def open_incident_with_key(session: AsyncSession, service: str,
                                 dedup_key: str) -> Incident | None:
    """The open incident of ``service`` with the monitor's ``dedup_key``, read for update."""
    return (await session.scalars(incidents.locked(select(Incident).where(
        Incident.service == service, Incident.dedup_key == dedup_key,
        Incident.status.in_(OPEN_STATES),  # type: ignore[attr-defined]
    )))).first()


async def trigger(session: AsyncSession, settings: IncidentsSettings, event: MonitorEvent,
                  payload: AlertPayload, service_name: str, environment: str, dedup_key: str,
                  actor: str) -> Incident:
    """Open an incident for the alert, or count and note it on the open one with its key."""
    alert = {
        "summary": payload.summary, "source": payload.source, "severity": payload.severity,
        "timestamp": payload.timestamp, "component": payload.component, "group": payload.group,
        "class": payload.class_, "custom_details": payload.custom_details,
        "dedup_key": dedup_key, "client": event.client, "client_url": event.client_url,
        "links": event.links, "images": event.images,
    }
    alert = {k: v for k, v in alert.items() if v is not None}
    # Triggers queue here, so two monitors racing on one key open one incident; the unique
    # index on open dedup keys is the backstop.
    await lock_numbers(session)
    existing = await open_incident_with_key(session, service_name, dedup_key)
    if existing is not None:
        return await _append(session, existing, payload, alert, actor)
    impact, urgency = SEVERITY_IMPACT_URGENCY[payload.severity]
    body = IncidentCreate(
        title=payload.summary.strip()[:200] or payload.source[:200],
        description=_describe_alert(alert), service=service_name,
        environment=Environment(environment), impact=impact, urgency=urgency,
    )
    incident, _ = await open_incident(session, settings, body, actor=actor,
                                      source=Source.monitor, dedup_key=dedup_key)
    await add_note(session, incident, f"Alert from {payload.source}: {payload.summary}"[:10000],
                   actor=actor, kind="alert", details=alert)
    await raise_failed_deployments(session, settings, incident, actor=actor)
    return incident


async def raise_failed_deployments(session: AsyncSession, settings: IncidentsSettings,
                                   alert: Incident, *, actor: str) -> None:
    """A monitor sees the same service failing while a failed deployment's incident (S2) of
    it is open: that incident is raised to the monitor's priority (a P3 by tier becomes major
    when the monitor says users are hit), with a note naming the alert's incident."""
    rows = (await session.scalars(incidents.locked(select(Incident).where(
        Incident.service == alert.service, Incident.environment == alert.environment,
        Incident.source == Source.deployment.value,
        Incident.status.in_(OPEN_STATES),  # type: ignore[attr-defined]
        Incident.priority > alert.priority).order_by(Incident.id)))).all()
    for failed in rows:
        before = failed.priority
        if await raise_priority(session, settings, failed, alert.priority, actor=actor):
            await add_note(session, failed, f"Raised from P{before} to P{alert.priority}: "
                           f"a monitor reports {alert.service} failing ({alert.number}).",
                           actor=actor, details={"incident_id": str(alert.id)})


async def lock_numbers(session: AsyncSession) -> None:
    """Take the incident number counter's row lock (SQLite: the write lock) first thing."""
    await session.execute(update(NumberSequence)
                          .where(NumberSequence.prefix == incidents.number_prefix)
                          .values(last_value=NumberSequence.last_value))


async def _append(session: AsyncSession, incident: Incident, payload: AlertPayload,
                  alert: dict[str, Any], actor: str) -> Incident:
    """A repeated trigger: counted and noted on the open incident, no new incident."""
    incident.alert_count += 1
    await add_note(session, incident,
                   f"Alert again from {payload.source}: {payload.summary}"[:10000],
                   actor=actor, kind="alert", details=alert)
    return incident


def _describe_alert(alert: dict[str, Any]) -> str:
    lines = [str(alert["summary"]), "", f"source: {alert['source']}",
             f"severity: {alert['severity']}"]
    for key in ("component", "group", "class", "client", "client_url"):
        if key in alert:
            lines.append(f"{key}: {alert[key]}")
    if "custom_details" in alert:
        lines.append("details: " + orjson.dumps(alert["custom_details"]).decode())
    return "\n".join(lines)[:10000]


async def monitor_move(session: AsyncSession, settings: IncidentsSettings,
                       incident: Incident, to: str,
                       event: MonitorEvent, actor: str) -> None:
    """Move the monitor's incident (read for update) as its acknowledge or resolve asks."""
    body = TransitionRequest(
        to=Status(to), reason=f"{event.event_action} from monitor",
        resolution_code=ResolutionCode.resolved_by_caller if to == "resolved" else None,
        resolution_notes="The monitor reported the condition cleared." if to == "resolved"
        else None,
    )
    await move_incident(session, incident, body, actor=actor,
                        review_due_working_days=settings.review_due_working_days)
