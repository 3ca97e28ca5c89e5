"""Reactions to other services' events."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tandem.events import CloudEvent
from tandem.settings import PlatformSettings

from incidents import service
from incidents.models import Incident, IncidentCreate


def reactions(platform: PlatformSettings) -> dict[str, object]:
    async def deployment_transitioned(session: AsyncSession, event: CloudEvent) -> None:
        """S2: a failed or rolled-back production deployment opens an incident."""
        deployment = event.data["deployment"]
        if event.data.get("to") not in ("failed", "rolled_back"):
            return
        if deployment.get("environment") != "production":
            return
        deployment_id = uuid.UUID(deployment["id"])
        existing = (await session.scalars(
            select(Incident).where(Incident.cause_deployment_id == deployment_id))).first()
        if existing is not None:
            return
        await service.create_incident(
            session, platform,
            IncidentCreate(
                title=f"Deployment {deployment['number']} of {deployment['service']} "
                      f"{event.data['to'].replace('_', ' ')}",
                description=f"Version {deployment.get('version')} {event.data['to']} in production.",
                service=deployment["service"], environment="production", impact=2, urgency=1,
            ),
            actor=event.actor, cause_deployment_id=deployment_id,
        )

    return {"tandem.deployment.transitioned": deployment_transitioned}
