"""This service's projections of other services' aggregates, kept from their events' snapshots
(docs/architecture.md lists the fields): changes and freezes (the gate), incidents (the gate,
DORA's time to restore and failed changes) and the catalog's services (DORA by team).

Each is a :class:`~tandem.projection.Projection`, one upsert per event; the reactions in
:mod:`deployments.consumers` apply them, the gate and DORA read them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.models import ChangeView, FreezeView, IncidentView, ServiceView
from deployments.rules.gate import ChangeFacts, change_rejected
from tandem.events import CloudEvent
from tandem.projection import Projection, Snapshot
from tandem.vocabulary import repository_name


def _as_utc(moment: datetime) -> datetime:
    # A publisher's time without an offset is UTC (every Tandem service publishes UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


UTCTime = Annotated[datetime, AfterValidator(_as_utc)]


def _or(default: Any) -> BeforeValidator:
    """A null value reads as ``default`` (made by calling it, if it is a type)."""
    return BeforeValidator(
        lambda value: (default() if isinstance(default, type) else default)
        if value is None else value)


class ChangeSnapshot(Snapshot):
    """The fields of ``data.change`` this service reads."""

    id: uuid.UUID
    number: str
    type: str
    service: str
    environment: str | None = None
    status: str
    planned_start: UTCTime | None = None
    planned_end: UTCTime | None = None
    incident_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    #: The standard change template it was recorded from; events before templates have none.
    template_id: uuid.UUID | None = None


class FreezeSnapshot(Snapshot):
    """The fields of ``data.freeze`` this service reads (no services: every service)."""

    id: uuid.UUID
    number: str | None = None
    services: Annotated[list[str], _or(list)] = Field(default_factory=list)
    #: No environments (and freezes from before they named any): every environment.
    environments: Annotated[list[str], _or(list)] = Field(default_factory=list)
    starts_at: UTCTime
    ends_at: UTCTime | None = None
    status: str
    source: Annotated[str, _or("manual")] = "manual"
    incident_id: uuid.UUID | None = None


class IncidentSnapshot(Snapshot):
    """The fields of ``data.incident`` this service reads."""

    id: uuid.UUID
    number: str
    service: str
    environment: str
    priority: int
    major: bool
    status: str
    cause_deployment_id: uuid.UUID | None = None
    reported_at: UTCTime | None = None
    created_at: UTCTime | None = None
    resolved_at: UTCTime | None = None


class ServiceSnapshot(Snapshot):
    """The fields of ``data.service`` (the catalog) this service reads."""

    id: uuid.UUID
    name: str
    owner_team: str | None = None
    operations_team: str | None = None
    #: ``github.com/acme/payments``; events before the catalog kept it have none.
    repository: str | None = None
    ci_environments: list[str] = Field(default_factory=list)


changes_seen = Projection(ChangeView, ChangeSnapshot)
services_seen = Projection(ServiceView, ServiceSnapshot)
freezes_seen = Projection(FreezeView, FreezeSnapshot)
incidents_seen = Projection(IncidentView, IncidentSnapshot)


def change_facts(change: ChangeView | ChangeSnapshot, rejected: bool) -> ChangeFacts:
    """What the gate knows of a change, from its view row or its latest snapshot."""
    return ChangeFacts(id=change.id, number=change.number, type=change.type,
                       service=change.service, status=change.status,
                       planned_start=change.planned_start, planned_end=change.planned_end,
                       incident_id=change.incident_id, rejected=rejected,
                       deployment_id=change.deployment_id, template_id=change.template_id)


async def project_change(session: AsyncSession, event: CloudEvent) -> ChangeFacts:
    """Keep the change's view current; ``rejected`` is derived from the move it made (read
    before the upsert: whether it came back to ``new`` from assess or authorize)."""
    change = changes_seen.read(event)
    before = await changes_seen.get(session, change.id)
    rejected = change_rejected(
        change.status, before=before.status if before is not None else None,
        was_rejected=before is not None and before.rejected,
        rejection_recorded=(event.type == "tandem.change.approval_recorded"
                            and event.data.get("decision") == "reject"))
    await changes_seen.store(session, change, derived={"rejected": rejected})
    return change_facts(change, rejected)


async def project_freeze(session: AsyncSession, event: CloudEvent) -> FreezeSnapshot:
    """Keep the freeze window's view current."""
    freeze = freezes_seen.read(event)
    return await freezes_seen.store(session, freeze, derived={
        "number": freeze.number or str(freeze.id)[:8]})


async def project_incident(session: AsyncSession, event: CloudEvent) -> IncidentSnapshot:
    """Keep the incident's view current; returns the incident as its view now holds it: its
    report time (else its creation, else the event's) and its cause (a ``cause_confirmed``
    event names it in ``data.deployment_id``)."""
    incident = incidents_seen.read(event)
    cause = incident.cause_deployment_id
    if event.type == "tandem.incident.cause_confirmed":
        cause = _uuid(event.data.get("deployment_id")) or cause
    derived = {"reported_at": incident.reported_at or incident.created_at or event.time,
               "cause_deployment_id": cause}
    await incidents_seen.store(session, incident, derived=derived)
    return incident.model_copy(update=derived)


def _uuid(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


async def project_service(session: AsyncSession, event: CloudEvent) -> ServiceSnapshot:
    """Keep the catalog service's view, its repository named as
    :func:`~tandem.vocabulary.repository_name` names it."""
    service = services_seen.read(event)
    return await services_seen.store(session, service, derived={
        "repository": repository_name(service.repository) if service.repository else None})


async def service_of_repository(session: AsyncSession, repository: str) -> str | None:
    """The catalog's service whose ``repository`` is ``repository``, if one is."""
    return (await session.scalars(select(ServiceView.name).where(
        ServiceView.repository == repository_name(repository)).order_by(
        ServiceView.name))).first()


async def services_of_team(session: AsyncSession, team: str) -> list[str]:
    """The services ``team`` owns or runs, as the catalog says."""
    return sorted(set(await session.scalars(select(ServiceView.name).where(or_(
        ServiceView.owner_team == team, ServiceView.operations_team == team)))))
