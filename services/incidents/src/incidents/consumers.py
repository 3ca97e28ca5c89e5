"""Reactions to other services' events: the projections of deployments, changes and the
catalog's services, S2 (a failed production deployment opens an incident), and assignment by
ownership (an open incident nobody works goes to its service's operations team once the
catalog names one).

Each handler is a named function ``(session, event, settings)`` run in the consumer's
transaction with its inbox row; :data:`HANDLERS` registers them by event type. Nothing here
imports another service: events carry the fields docs/architecture.md lists.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events
from incidents.assignment import group_of
from incidents.config import IncidentsSettings
from incidents.incident import assign_unassigned, incidents, move_incident, open_incident
from incidents.models import Incident
from incidents.notes import add_note
from incidents.projections import (
    DeploymentSnapshot,
    deployments_seen,
    project_change,
    project_deployment,
    project_freeze,
    project_service,
    service_named,
)
from incidents.reviews import SYSTEM_ACTOR, close_actions_fixed_by, refresh_timelines
from incidents.rules.lifecycle import FINAL_STATES, OPEN_STATES, ResolutionCode
from incidents.schemas import IncidentCreate, Source, Status, TransitionRequest
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
    elif to == "succeeded" and deployment.environment == "production":
        await recovery_succeeded(session, event, settings, deployment)
        await fix_deployed(session, event, deployment)


async def fix_deployed(session: AsyncSession, event: CloudEvent,
                       deployment: DeploymentSnapshot) -> None:
    """The developers' fix closes the operations' finding: a production deployment carrying a
    change succeeded, so the review action items naming that change close themselves."""
    view = await deployments_seen.get(session, deployment.id)
    if view is not None:
        await close_actions_fixed_by(session, view, actor=event.actor,
                                     at=deployment.finished_at or event.time)


async def _recovered_incident(session: AsyncSession,
                              recovery: dict[str, Any]) -> Incident | None:
    """The incident a recovery names (a fix forward's, or the emergency change's), else the
    one its failed deployment opened; read for update."""
    if recovery.get("incident_id"):
        found = await incidents.find(session, uuid.UUID(str(recovery["incident_id"])),
                                     for_update=True)
        if found is not None:
            return found
    if not recovery.get("deployment_id"):
        return None
    failed = uuid.UUID(str(recovery["deployment_id"]))
    return (await session.scalars(incidents.locked(select(Incident).where(
        Incident.opened_by_deployment_id == failed)))).first()


async def recovery_succeeded(session: AsyncSession, event: CloudEvent,
                             settings: IncidentsSettings, deployment: DeploymentSnapshot) -> None:
    """Closing the loop: a deployment that recovers from a failure (a rollback or a fix
    forward) succeeded, so the failure's incident is mitigated at that moment (and resolved,
    with ``TANDEM_INCIDENTS_RESOLVE_ON_RECOVERY``)."""
    recovery = (event.data.get("deployment") or {}).get("recovery")
    if not isinstance(recovery, dict):
        return
    incident = await _recovered_incident(session, recovery)
    if incident is None or incident.status not in OPEN_STATES:
        return
    at = deployment.finished_at or event.time
    kind = "rolled back" if recovery.get("kind") == "rollback" else "fixed forward"
    text = f"Deployment {deployment.number} ({kind}) succeeded: service restored."
    if incident.mitigated_at is None:
        incident.mitigated_at = at
        await incidents.record(session, incident, events.IncidentUpdated, actor=event.actor,
                               changes={"mitigated_at": (None, at.isoformat())})
        await add_note(session, incident, text, actor=event.actor, kind="deployment",
                       details={"deployment_id": str(deployment.id), "status": "succeeded",
                                "recovery": recovery.get("kind"),
                                "mitigated_at": at.isoformat()})
    if settings.resolve_on_recovery and incident.status != "on_hold":
        code = (ResolutionCode.rolled_back if recovery.get("kind") == "rollback"
                else ResolutionCode.resolved_by_change)
        await move_incident(session, incident, TransitionRequest(
            to=Status.resolved, reason=f"recovery deployment {deployment.number} succeeded",
            resolution_code=code, resolution_notes=text), actor=event.actor,
            pausing_hold_reasons=settings.sla_pausing_hold_reasons,
            review_due_working_days=settings.review_due_working_days)


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
    service = await service_named(session, deployment.service)
    priority = settings.deployment_failure_priority(service.tier if service else None)
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
        priority=priority,
    )


async def change_changed(session: AsyncSession, event: CloudEvent,
                         settings: IncidentsSettings) -> None:
    """A change was created, edited, moved or approved: keep its view current (S3)."""
    await project_change(session, event)


async def freeze_changed(session: AsyncSession, event: CloudEvent,
                         settings: IncidentsSettings) -> None:
    """A freeze began, moved or ended: keep its view, and take it into the timelines of the
    reviews it belongs to when they opened before it was heard."""
    freeze = await project_freeze(session, event)
    await refresh_timelines(session, freeze, actor=SYSTEM_ACTOR)


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
    "tandem.freeze.created": freeze_changed,
    "tandem.freeze.transitioned": freeze_changed,
    "tandem.service.created": catalog_service_changed,
    "tandem.service.updated": catalog_service_changed,
}

#: The service's one consumer of other topics.
REACTIONS = Reaction(topics=["deployments", "changes", "catalog"], handlers=HANDLERS)
