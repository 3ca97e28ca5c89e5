"""Reactions to the incidents and deployments topics (plain dicts, fields per architecture.md)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from changes import service
from changes.service import Context
from tandem.consumer import Handler
from tandem.events import CloudEvent

INCIDENT_EVENT_TYPES = (
    "tandem.incident.created", "tandem.incident.updated", "tandem.incident.transitioned",
    "tandem.incident.annotated", "tandem.incident.sla_breached",
    "tandem.incident.suspects_found",
)


def reactions(ctx: Context) -> dict[str, Handler]:
    """The handlers of the changes service's consumer, keyed by event type."""

    async def incident_changed(session: AsyncSession, event: CloudEvent) -> None:
        """Keep the incident projection (risk) and S4 freezes current."""
        incident = event.data.get("incident")
        if incident:
            await service.apply_incident(session, ctx, incident, actor=event.actor)

    async def cause_confirmed(session: AsyncSession, event: CloudEvent) -> None:
        """A confirmed cause marks the change and lowers its service's success score."""
        await incident_changed(session, event)
        change = await service.find_change_for(session, change_id=event.data.get("change_id"),
                                               deployment_id=event.data.get("deployment_id"))
        if change is None:
            return
        priority = event.data.get("priority") or (event.data.get("incident") or {}).get("priority")
        await service.record_cause(session, ctx, change, incident_id=event.subject,
                                   priority=priority, actor=event.actor)

    async def deployment_transitioned(session: AsyncSession, event: CloudEvent) -> None:
        """S5: the change follows its deployment."""
        deployment: dict[str, Any] = event.data["deployment"]
        change = await service.find_change_for(session, change_id=deployment.get("change_id"),
                                               deployment_id=deployment.get("id"))
        if change is None:
            return
        await service.follow_deployment(
            session, ctx, change, event.data.get("to") or deployment["status"],
            deployment_number=deployment.get("number", deployment["id"]), actor=event.actor)

    async def gate_decided(session: AsyncSession, event: CloudEvent) -> None:
        """S1: a gate asking for a change (receipt or approval mode) creates and links it."""
        request = event.data.get("change_request")
        if not request:
            return
        await service.create_requested_change(
            session, ctx, deployment_id=uuid.UUID(event.data["deployment"]["id"]),
            request=request, actor=event.actor)

    handlers: dict[str, Handler] = dict.fromkeys(INCIDENT_EVENT_TYPES, incident_changed)
    handlers["tandem.incident.cause_confirmed"] = cause_confirmed
    handlers["tandem.deployment.transitioned"] = deployment_transitioned
    handlers["tandem.deployment.gate_decided"] = gate_decided
    return handlers
