"""Reactions to ``tandem.changes`` and ``tandem.incidents``: the projections the gate and DORA
read, kept as plain rows from the events' snapshots (no other service's code is imported)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from deployments import service
from deployments.config import DeploymentsSettings
from deployments.models import ChangeView, FreezeView, IncidentView
from tandem.consumer import Handler
from tandem.events import CloudEvent
from tandem.settings import PlatformSettings

CHANGE_EVENTS = ("created", "updated", "transitioned", "approval_recorded")
FREEZE_EVENTS = ("created", "updated", "transitioned")
INCIDENT_EVENTS = ("created", "updated", "transitioned", "annotated", "sla_breached",
                   "suspects_found", "cause_confirmed")


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def apply_change(session: AsyncSession, event: CloudEvent) -> ChangeView:
    """Upsert the change's projection; a move back to ``new`` from assess/authorize is a
    rejection."""
    change = event.data["change"]
    change_id = uuid.UUID(change["id"])
    view = await session.get(ChangeView, change_id)
    before = view.status if view is not None else None
    if view is None:
        view = ChangeView(id=change_id, number=change["number"], type=change["type"],
                          service=change["service"], status=change["status"])
        session.add(view)
    status = change["status"]
    rejected_now = (event.type == "tandem.change.approval_recorded"
                    and event.data.get("decision") == "reject")
    view.rejected = status == "new" and (
        before in ("assess", "authorize") or rejected_now or (view.rejected and before == "new"))
    view.number = change["number"]
    view.type = change["type"]
    view.service = change["service"]
    view.environment = change.get("environment")
    view.status = status
    view.planned_start = _time(change.get("planned_start"))
    view.planned_end = _time(change.get("planned_end"))
    view.incident_id = _uuid(change.get("incident_id"))
    view.deployment_id = _uuid(change.get("deployment_id"))
    return view


async def apply_freeze(session: AsyncSession, event: CloudEvent) -> FreezeView:
    freeze = event.data["freeze"]
    freeze_id = uuid.UUID(freeze["id"])
    view = await session.get(FreezeView, freeze_id)
    starts_at = _time(freeze.get("starts_at"))
    if view is None:
        view = FreezeView(id=freeze_id, number=freeze.get("number") or str(freeze_id)[:8],
                          starts_at=starts_at, status=freeze["status"],
                          source=freeze.get("source") or "manual")
        session.add(view)
    view.number = freeze.get("number") or view.number
    view.services = list(freeze.get("services") or [])
    view.starts_at = starts_at or view.starts_at
    view.ends_at = _time(freeze.get("ends_at"))
    view.status = freeze["status"]
    view.source = freeze.get("source") or "manual"
    view.incident_id = _uuid(freeze.get("incident_id"))
    return view


async def apply_incident(session: AsyncSession, event: CloudEvent) -> IncidentView:
    """Upsert the incident's projection and fold a named cause into DORA facts."""
    incident = event.data["incident"]
    incident_id = uuid.UUID(incident["id"])
    view = await session.get(IncidentView, incident_id)
    reported_at = (_time(incident.get("reported_at")) or _time(incident.get("created_at"))
                   or event.time)
    if view is None:
        view = IncidentView(id=incident_id, number=incident["number"],
                            service=incident["service"], environment=incident["environment"],
                            priority=incident["priority"], major=incident["major"],
                            status=incident["status"], reported_at=reported_at)
        session.add(view)
    view.number = incident["number"]
    view.service = incident["service"]
    view.environment = incident["environment"]
    view.priority = int(incident["priority"])
    view.major = bool(incident["major"])
    view.status = incident["status"]
    view.reported_at = reported_at
    view.resolved_at = _time(incident.get("resolved_at"))
    cause = _uuid(incident.get("cause_deployment_id"))
    if event.type == "tandem.incident.cause_confirmed":
        cause = _uuid(event.data.get("deployment_id")) or cause
    view.cause_deployment_id = cause or view.cause_deployment_id
    await service.record_incident_cause(session, view)
    return view


def reactions(platform: PlatformSettings, settings: DeploymentsSettings,
              signals: service.GateSignals) -> Mapping[str, Handler]:
    """The handlers of the deployments service's one consumer, by event type."""

    async def change_event(session: AsyncSession, event: CloudEvent) -> None:
        """S1: a change the gate waits on (or asked for) moved; decide again."""
        view = await apply_change(session, event)
        for dep in await service.deployments_for_change(session, view):
            await service.redecide(session, platform, settings, dep, view, actor=event.actor)
            signals.note(event.id, dep.id)

    async def freeze_event(session: AsyncSession, event: CloudEvent) -> None:
        await apply_freeze(session, event)

    async def incident_event(session: AsyncSession, event: CloudEvent) -> None:
        await apply_incident(session, event)

    handlers: dict[str, Handler] = {}
    handlers.update({f"tandem.change.{verb}": change_event for verb in CHANGE_EVENTS})
    handlers.update({f"tandem.freeze.{verb}": freeze_event for verb in FREEZE_EVENTS})
    handlers.update({f"tandem.incident.{verb}": incident_event for verb in INCIDENT_EVENTS})
    return handlers
