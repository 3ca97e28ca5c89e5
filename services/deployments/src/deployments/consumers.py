"""Every reaction of the deployments service to another service's event, by event type: the
projections the gate and DORA read (:mod:`deployments.projections`), a waiting gate decided
again when its change moves, the incidents (DORA reads the causes they name), and the
catalog's services (DORA by team).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from deployments.config import DeploymentsSettings
from deployments.gate_decisions import deployments_for_change, redecide
from deployments.projections import (
    project_change,
    project_freeze,
    project_incident,
    project_service,
)
from tandem.app import Reaction, ReactionHandler
from tandem.events import CloudEvent

CHANGE_EVENTS = ("created", "updated", "transitioned", "approval_recorded")
FREEZE_EVENTS = ("created", "updated", "transitioned")
INCIDENT_EVENTS = ("created", "updated", "transitioned", "annotated", "sla_breached",
                   "suspects_found", "cause_confirmed")


async def change_moved(session: AsyncSession, event: CloudEvent,
                       settings: DeploymentsSettings) -> None:
    """S1: keep the change's view; the gates that rest on it (deployments carrying it, the one
    that asked for it) are decided again, each under its write lock."""
    change = await project_change(session, event)
    for dep in await deployments_for_change(session, change):
        await redecide(session, settings, dep, change, actor=event.actor)


async def freeze_moved(session: AsyncSession, event: CloudEvent,
                       settings: DeploymentsSettings) -> None:
    """S1/S4: keep the freeze window's view (the next gate decisions read it)."""
    await project_freeze(session, event)


async def incident_moved(session: AsyncSession, event: CloudEvent,
                         settings: DeploymentsSettings) -> None:
    """Keep the incident's view (gate, time to restore, and the cause DORA counts as a failed
    change: S3, S6)."""
    await project_incident(session, event)


async def catalog_service_changed(session: AsyncSession, event: CloudEvent,
                                  settings: DeploymentsSettings) -> None:
    """Keep the catalog service's view (which services a team has, for DORA by team; which
    repository names it, for the webhooks)."""
    await project_service(session, event)


HANDLERS: dict[str, ReactionHandler] = {
    **{f"tandem.change.{verb}": change_moved for verb in CHANGE_EVENTS},
    **{f"tandem.freeze.{verb}": freeze_moved for verb in FREEZE_EVENTS},
    **{f"tandem.incident.{verb}": incident_moved for verb in INCIDENT_EVENTS},
    "tandem.service.created": catalog_service_changed,
    "tandem.service.updated": catalog_service_changed,
}

#: The service's one consumer, of the changes, incidents and catalog topics.
REACTIONS = Reaction(topics=["changes", "incidents", "catalog"], handlers=HANDLERS)
