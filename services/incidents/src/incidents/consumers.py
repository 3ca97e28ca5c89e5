"""Reactions to other services' events: projections of deployments and changes, and S2.

Events arrive as plain dicts (fields per docs/architecture.md); nothing here imports another
service. Each handler runs in the consumer's transaction, with its inbox row.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents import service
from incidents.config import IncidentsSettings
from incidents.models import ChangeView, DeploymentView, Incident, IncidentCreate, Source
from incidents.policy import FINAL_STATES
from tandem.consumer import Handler
from tandem.db import upsert
from tandem.events import CloudEvent
from tandem.settings import PlatformSettings


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DeploymentSnapshot(_Snapshot):
    id: uuid.UUID
    number: str
    service: str
    environment: str
    version: str | None = None
    change_id: uuid.UUID | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None


class ChangeSnapshot(_Snapshot):
    id: uuid.UUID
    number: str
    type: str
    title: str = ""
    service: str
    environment: str
    status: str


#: Change states that mean the change was carried out.
IMPLEMENTED = ("implement", "review", "closed")
DEPLOYMENT_FAILED = ("failed", "rolled_back")


async def project_deployment(session: AsyncSession, event: CloudEvent) -> DeploymentSnapshot:
    """Keep this service's view of a deployment current (events arrive in order per id)."""
    d = DeploymentSnapshot.model_validate(event.data["deployment"])
    ran = d.status not in ("requested", "canceled")
    await upsert(session, DeploymentView.__table__, {  # type: ignore[attr-defined]
        "id": d.id, "number": d.number, "service": d.service, "environment": d.environment,
        "version": d.version[:200] if d.version else None, "change_id": d.change_id,
        "status": d.status, "updated_at": event.time,
        # When it first ran: kept once known.
        "deployed_at": (d.started_at or d.finished_at or event.time) if ran else None,
    }, keep=("deployed_at",))
    return d


async def project_change(session: AsyncSession, event: CloudEvent) -> None:
    c = ChangeSnapshot.model_validate(event.data["change"])
    await upsert(session, ChangeView.__table__, {  # type: ignore[attr-defined]
        "id": c.id, "number": c.number, "type": c.type, "title": c.title[:200],
        "service": c.service, "environment": c.environment, "status": c.status,
        "updated_at": event.time,
        # When it first reached implement (or later): kept once known.
        "implemented_at": event.time if c.status in IMPLEMENTED else None,
    }, keep=("implemented_at",))


def reactions(platform: PlatformSettings, settings: IncidentsSettings) -> Mapping[str, Handler]:
    """Handlers by event type for the ``deployments`` and ``changes`` topics."""

    async def deployment_changed(session: AsyncSession, event: CloudEvent) -> None:
        view = await project_deployment(session, event)
        if event.type == "tandem.deployment.transitioned":
            await deployment_failed(session, event, view)

    async def deployment_failed(session: AsyncSession, event: CloudEvent,
                                view: DeploymentSnapshot) -> None:
        """S2: a failed or rolled-back production deployment opens one incident, with the
        deployment as its declared cause; a later move annotates that incident."""
        to = event.data.get("to", view.status)
        if to not in DEPLOYMENT_FAILED or view.environment != "production":
            return
        what = "rolled back" if to == "rolled_back" else "failed"
        existing = (await session.scalars(
            select(Incident).where(Incident.opened_by_deployment_id == view.id))).first()
        if existing is not None:
            if existing.status not in FINAL_STATES:
                await service.add_note(
                    session, platform, existing, f"Deployment {view.number} {what}.",
                    actor=event.actor, kind="deployment",
                    details={"deployment_id": str(view.id), "status": to})
            return
        await service.create_incident(
            session, platform, settings,
            IncidentCreate(
                title=f"Deployment {view.number} of {view.service} {what}"[:200],
                description=f"Version {view.version or 'unknown'} of {view.service} {what} in "
                            f"production. {event.data.get('reason') or ''}".strip()[:10000],
                service=view.service, environment="production",  # type: ignore[arg-type]
                impact=settings.deployment_failure_impact,
                urgency=settings.deployment_failure_urgency,
            ),
            actor=event.actor, source=Source.deployment, opened_by_deployment_id=view.id,
            cause_deployment_id=view.id, cause_change_id=view.change_id,
        )

    async def change_changed(session: AsyncSession, event: CloudEvent) -> None:
        await project_change(session, event)

    handlers: dict[str, Handler] = {}
    for verb in ("created", "updated", "transitioned", "gate_decided"):
        handlers[f"tandem.deployment.{verb}"] = deployment_changed
    for verb in ("created", "updated", "transitioned", "approval_recorded"):
        handlers[f"tandem.change.{verb}"] = change_changed
    return handlers
