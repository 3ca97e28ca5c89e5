"""PagerDuty Change Events in: ``POST /v2/change/enqueue``, as CI tools send them to PagerDuty.

A build that tells PagerDuty "this changed" tells Tandem the same, unchanged: the routing key
names the service (``TANDEM_DEPLOYMENTS_ROUTING_KEYS``, by default the incidents service's
monitor keys), and the change is recorded as a succeeded deployment at the event's time, with
its summary and links, so suspects and DORA see it. The answers are PagerDuty's: 202
``{"status": "success", "message": "Change event processed"}``, or 400 ``invalid event``.

A change event has no id of its own; its digest (routing key, summary, timestamp, source,
details and links) is its external id, so the same event sent twice is recorded once.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select

from deployments.config import Settings
from deployments.deployment import deployments
from deployments.lifecycle import Reported, record_reported
from deployments.models import Deployment
from tandem.app import Session
from tandem.db import utcnow
from tandem.numbers import hold_numbers
from tandem.pagerduty import describe, inline_schema, invalid

router = APIRouter(tags=["change events"])


class ChangeLink(BaseModel):
    model_config = ConfigDict(extra="ignore")

    href: str = Field(min_length=1, max_length=2048)
    text: str | None = Field(default=None, max_length=1024)


class ChangePayload(BaseModel):
    # PagerDuty ignores fields it does not know; so do we.
    model_config = ConfigDict(extra="ignore")

    summary: str = Field(min_length=1, max_length=1024)
    timestamp: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=255)
    custom_details: Any = None

    @field_validator("timestamp")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            when(value)
        return value


class ChangeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    routing_key: str = Field(min_length=1, max_length=255)
    payload: ChangePayload
    links: list[ChangeLink] | None = Field(default=None, max_length=100)


def when(timestamp: str) -> datetime:
    """An ISO 8601 time as PagerDuty takes it (``2020-07-17T08:42:58.315+0000``), in UTC."""
    try:
        moment = datetime.fromisoformat(timestamp.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time") from None
    if moment.tzinfo is None:
        raise ValueError("must name its UTC offset")
    return moment.astimezone(UTC)


def _run_url(href: str) -> bool:
    """Whether a link may stand as the deployment's pipeline run (an http(s) URL)."""
    return href.startswith(("http://", "https://")) and len(href) <= 2000 and " " not in href


def _version(details: Any, summary: str) -> str:
    if isinstance(details, dict):
        for key in ("version", "build_number", "build", "release"):
            if isinstance(details.get(key), str | int) and str(details[key]):
                return str(details[key])[:100]
    return summary[:100]


@router.post(
    "/v2/change/enqueue", status_code=202,
    summary="Send a change event (PagerDuty Change Events)",
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": inline_schema(ChangeEvent)}}}},
    responses={400: {"description": "Invalid event, in PagerDuty's shape"}},
)
async def change_enqueue(request: Request, session: Session, settings: Settings
                         ) -> JSONResponse:
    """Record the change as a succeeded deployment of the routing key's service."""
    body = await request.body()
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return invalid(["Could not parse the request body as JSON"], status="invalid request")
    if not isinstance(raw, dict):
        return invalid(["The event must be a JSON object"])
    try:
        event = ChangeEvent.model_validate(raw)
    except ValidationError as exc:
        return invalid(describe(exc))
    route = settings.routes().get(event.routing_key)
    if route is None:
        return invalid(["'routing_key' is not a routing key of any Tandem service "
                        "(TANDEM_DEPLOYMENTS_ROUTING_KEYS)"])
    service, environment = route
    digest = hashlib.sha256(orjson.dumps(event.model_dump(mode="json"),
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]
    external_id = f"pagerduty:{digest}"
    # The number counter's lock first: the same event sent twice at once is recorded once.
    await hold_numbers(session, deployments.number_prefix)
    already = (await session.scalars(select(Deployment.id).where(
        Deployment.external_id == external_id))).first()
    if already is None:
        p = event.payload
        at = when(p.timestamp) if p.timestamp else utcnow()
        links = [link.model_dump() for link in event.links or []]
        await record_reported(session, [Reported(
            service=service, environment=environment,
            software_version=_version(p.custom_details, p.summary), status="succeeded",
            started_at=at, finished_at=at, external_id=external_id, summary=p.summary,
            pipeline={"id": (p.source or "change-event")[:255],
                      "run_url": next((lk["href"] for lk in links if _run_url(lk["href"])),
                                      None)},
            links=links)],
            actor=f"pagerduty:{p.source or event.routing_key[:8]}"[:255], imported=False,
            origin=f"PagerDuty change event from {p.source or 'an unnamed source'}"[:300])
    return JSONResponse({"status": "success", "message": "Change event processed"},
                        status_code=202)
