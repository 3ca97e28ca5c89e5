"""This service's projections of other services' aggregates, kept from their events'
snapshots (docs/architecture.md lists the fields): deployments (S2, S3), changes (S3) and the
catalog's services (who runs a service, which services a team has).

Each is a :class:`~tandem.projection.Projection`: one upsert per event; the consumers in
:mod:`incidents.consumers` apply them, suspects and causes read them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import ChangeView, DeploymentView, FreezeView, ServiceView
from tandem.events import CloudEvent
from tandem.projection import Projection, Snapshot


def _clip(length: int) -> AfterValidator:
    """Keep the first ``length`` characters (the view's column holds no more)."""
    return AfterValidator(lambda value: value[:length] if value else value)


class DeploymentSnapshot(Snapshot):
    """The fields of ``data.deployment`` this service reads."""

    id: uuid.UUID
    number: str
    service: str
    environment: str
    #: The deployed software's version; events from before it was published have none.
    software_version: Annotated[str | None, _clip(200)] = None
    change_id: uuid.UUID | None = None
    status: str
    started_at: datetime | None = None
    finished_at: datetime | None = None
    #: The gate's decision; its ``change_id`` is the change recorded for the deployment (a
    #: receipt) when the pipeline named none.
    gate: dict[str, Any] | None = None


class ChangeSnapshot(Snapshot):
    """The fields of ``data.change`` this service reads."""

    id: uuid.UUID
    number: str
    type: str
    title: Annotated[str, _clip(200)] = ""
    service: str
    environment: str
    status: str
    #: The deployment that asked for the change (a gate's receipt or approval request).
    deployment_id: uuid.UUID | None = None


class ServiceSnapshot(Snapshot):
    """The fields of ``data.service`` (the catalog) this service reads."""

    id: uuid.UUID
    name: str
    owner_team: str | None = None
    operations_team: str | None = None
    tier: int | None = None


class FreezeSnapshot(Snapshot):
    """The fields of ``data.freeze`` this service reads (a review's timeline)."""

    id: uuid.UUID
    number: str
    services: list[str] = Field(default_factory=list)
    starts_at: datetime
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    status: str
    source: str = "manual"
    incident_id: uuid.UUID | None = None
    reason: str = ""


#: Deployment states in which it never ran (no suspect, no deployment time).
NEVER_RAN = ("requested", "canceled")
#: Deployment states in which it went live (served production).
LIVE = ("succeeded", "rolled_back")
#: Change states that mean the change was carried out.
IMPLEMENTED = ("implement", "review", "closed")

deployments_seen = Projection(DeploymentView, DeploymentSnapshot, keep=("deployed_at",))
changes_seen = Projection(ChangeView, ChangeSnapshot, keep=("implemented_at",))
services_seen = Projection(ServiceView, ServiceSnapshot)
freezes_seen = Projection(FreezeView, FreezeSnapshot)


async def project_deployment(session: AsyncSession, event: CloudEvent) -> DeploymentSnapshot:
    """Keep the view of the event's deployment current; ``deployed_at`` is when it first ran
    (kept once known)."""
    d = deployments_seen.read(event)
    ran = d.status not in NEVER_RAN
    ran_at = (d.started_at or d.finished_at or event.time) if ran else None
    return await deployments_seen.store(session, d, derived={
        "updated_at": event.time,
        "deployed_at": ran_at,
        # The change it carried: the one the pipeline named, else the gate's receipt.
        "change_id": d.change_id or _gate_change(d.gate),
        # Live: once it succeeded (a rolled back one was live until then), else since it ran.
        "live_at": d.finished_at if d.status in LIVE and d.finished_at else ran_at,
    })


def _gate_change(gate: dict[str, Any] | None) -> uuid.UUID | None:
    """The change the gate's decision rests on (its receipt), if it names a well-formed one."""
    value = (gate or {}).get("change_id") if isinstance(gate, dict) else None
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def project_change(session: AsyncSession, event: CloudEvent) -> ChangeSnapshot:
    """Keep the view of the event's change current; ``implemented_at`` is when it first
    reached ``implement`` or later (kept once known)."""
    change = changes_seen.read(event)
    return await changes_seen.store(session, change, derived={
        "updated_at": event.time,
        "implemented_at": event.time if change.status in IMPLEMENTED else None,
    })


async def project_freeze(session: AsyncSession, event: CloudEvent) -> FreezeSnapshot:
    """Keep the view of the event's freeze current."""
    return await freezes_seen.apply(session, event, derived={"updated_at": event.time})


async def project_service(session: AsyncSession, event: CloudEvent) -> ServiceSnapshot:
    """Keep the view of the event's catalog service current."""
    return await services_seen.apply(session, event, derived={"updated_at": event.time})


#: One service's view by name (built once: every incident opened reads it).
_SERVICE_NAMED = (select(ServiceView).where(ServiceView.name == bindparam("name"))
                  .execution_options(populate_existing=True))


async def service_named(session: AsyncSession, name: str) -> ServiceView | None:
    """What the catalog said last of the service called ``name``, if anything."""
    return (await session.scalars(_SERVICE_NAMED, {"name": name})).first()


async def services_of_team(session: AsyncSession, team: str) -> list[str]:
    """The services ``team`` owns or runs, as the catalog says."""
    return sorted(set(await session.scalars(select(ServiceView.name).where(or_(
        ServiceView.owner_team == team, ServiceView.operations_team == team)))))
