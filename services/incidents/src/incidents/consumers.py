"""Reactions to other services' events: the projections of deployments, changes and the
catalog's services, S2 (a failed production deployment opens an incident), and assignment by
ownership (an open incident nobody works goes to its service's operations team once the
catalog names one).

Each handler is a named function ``(session, event, settings)`` run in the consumer's
transaction with its inbox row; :data:`HANDLERS` registers them by event type. Nothing here
imports another service: events carry the fields docs/architecture.md lists.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.assignment import group_of
from incidents.config import IncidentsSettings
from incidents.incident import assign_unassigned, incidents, open_incident
from incidents.models import Incident
from incidents.notes import add_note
from incidents.projections import (
    DeploymentSnapshot,
    project_change,
    project_deployment,
    project_service,
)
from incidents.rules.lifecycle import FINAL_STATES
from incidents.schemas import IncidentCreate, Source
from tandem.app import Reaction, ReactionHandler
from tandem.events import CloudEvent

#: Deployment moves that open (or annotate) an incident in production.
DEPLOYMENT_FAILED = ("failed", "rolled_back")


async def deployment_changed(session: AsyncSession, event: CloudEvent,
                             settings: IncidentsSettings) -> None:
    """A deployment was created, edited or gated: keep its view current."""
    await project_deployment(session, event)


async def deployment_moved(session: AsyncSession, event: CloudEvent,
                           settings: IncidentsSettings) -> None:
    """A deployment moved: keep its view current, and S2 when it failed in production."""
    deployment = await project_deployment(session, event)
    to = event.data.get("to", deployment.status)
    if to in DEPLOYMENT_FAILED and deployment.environment == "production":
        await deployment_failed(session, event, settings, deployment, to)


async def deployment_failed(session: AsyncSession, event: CloudEvent,
                            settings: IncidentsSettings, deployment: DeploymentSnapshot,
                            to: str) -> None:
    """S2: a failed or rolled-back production deployment opens one incident, with the
    deployment as its declared cause; a later move annotates that incident."""
    what = "rolled back" if to == "rolled_back" else "failed"
    existing = (await session.scalars(incidents.locked(select(Incident).where(
        Incident.opened_by_deployment_id == deployment.id)))).first()
    if existing is not None:
        if existing.status not in FINAL_STATES:
            await add_note(session, existing, f"Deployment {deployment.number} {what}.",
                           actor=event.actor, kind="deployment",
                           details={"deployment_id": str(deployment.id), "status": to})
        return
    # A second opener of the same deployment fails on opened_by_deployment_id's unique key.
    await open_incident(
        session, settings,
        IncidentCreate(
            title=f"Deployment {deployment.number} of {deployment.service} {what}"[:200],
            description=f"Version {deployment.software_version or 'unknown'} of "
                        f"{deployment.service} {what} in production. "
                        f"{event.data.get('reason') or ''}".strip()[:10000],
            service=deployment.service, environment="production",  # type: ignore[arg-type]
            impact=settings.deployment_failure_impact,
            urgency=settings.deployment_failure_urgency,
        ),
        actor=event.actor, source=Source.deployment, opened_by_deployment_id=deployment.id,
        cause_deployment_id=deployment.id, cause_change_id=deployment.change_id,
    )


async def change_changed(session: AsyncSession, event: CloudEvent,
                         settings: IncidentsSettings) -> None:
    """A change was created, edited, moved or approved: keep its view current (S3)."""
    await project_change(session, event)


async def catalog_service_changed(session: AsyncSession, event: CloudEvent,
                                  settings: IncidentsSettings) -> None:
    """The catalog wrote a service down or changed who runs it: keep its view, and give its
    open unassigned incidents (opened before the catalog knew) to its operations team."""
    service = await project_service(session, event)
    if (group := group_of(service)) is not None:
        await assign_unassigned(session, service.name, group, actor=event.actor)


HANDLERS: dict[str, ReactionHandler] = {
    "tandem.deployment.created": deployment_changed,
    "tandem.deployment.updated": deployment_changed,
    "tandem.deployment.gate_decided": deployment_changed,
    "tandem.deployment.transitioned": deployment_moved,
    "tandem.change.created": change_changed,
    "tandem.change.updated": change_changed,
    "tandem.change.transitioned": change_changed,
    "tandem.change.approval_recorded": change_changed,
    "tandem.service.created": catalog_service_changed,
    "tandem.service.updated": catalog_service_changed,
}

#: The service's one consumer of other topics.
REACTIONS = Reaction(topics=["deployments", "changes", "catalog"], handlers=HANDLERS)
