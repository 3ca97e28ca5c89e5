"""This service's projections of other services' aggregates, kept from their events'
snapshots (docs/architecture.md lists the fields): deployments (S2, S3) and changes (S3).

Each is a :class:`~tandem.projection.Projection`: one upsert per event; the consumers in
:mod:`incidents.consumers` apply them, suspects and causes read them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.models import ChangeView, DeploymentView
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


class ChangeSnapshot(Snapshot):
    """The fields of ``data.change`` this service reads."""

    id: uuid.UUID
    number: str
    type: str
    title: Annotated[str, _clip(200)] = ""
    service: str
    environment: str
    status: str


#: Deployment states in which it never ran (no suspect, no deployment time).
NEVER_RAN = ("requested", "canceled")
#: Change states that mean the change was carried out.
IMPLEMENTED = ("implement", "review", "closed")

deployments_seen = Projection(DeploymentView, DeploymentSnapshot, keep=("deployed_at",))
changes_seen = Projection(ChangeView, ChangeSnapshot, keep=("implemented_at",))


async def project_deployment(session: AsyncSession, event: CloudEvent) -> DeploymentSnapshot:
    """Keep the view of the event's deployment current; ``deployed_at`` is when it first ran
    (kept once known)."""
    d = deployments_seen.read(event)
    ran = d.status not in NEVER_RAN
    return await deployments_seen.apply(session, event, derived={
        "updated_at": event.time,
        "deployed_at": (d.started_at or d.finished_at or event.time) if ran else None,
    })


async def project_change(session: AsyncSession, event: CloudEvent) -> ChangeSnapshot:
    """Keep the view of the event's change current; ``implemented_at`` is when it first
    reached ``implement`` or later (kept once known)."""
    status = changes_seen.read(event).status
    return await changes_seen.apply(session, event, derived={
        "updated_at": event.time,
        "implemented_at": event.time if status in IMPLEMENTED else None,
    })
