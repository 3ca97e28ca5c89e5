"""What the notifier keeps of the catalog: each service's owner and operations team, for the
``teams`` filter (docs/architecture.md lists the fields of ``data.service`` it reads)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import ServiceView
from tandem.events import CloudEvent
from tandem.projection import Projection, Snapshot


class ServiceSnapshot(Snapshot):
    """The fields of ``data.service`` (the catalog) the notifier reads."""

    id: uuid.UUID
    name: str
    owner_team: str | None = None
    operations_team: str | None = None


class TeamSnapshot(Snapshot):
    """The fields of ``data.team`` (the catalog) the notifier reads."""

    id: uuid.UUID
    name: str
    notify: dict[str, str | None] | None = None


services_seen = Projection(ServiceView, ServiceSnapshot)


async def project_service(session: AsyncSession, event: CloudEvent) -> ServiceSnapshot:
    """Keep the view of the event's catalog service current."""
    return await services_seen.apply(session, event, derived={"updated_at": event.time})


def team_of(event: CloudEvent) -> TeamSnapshot:
    return TeamSnapshot.model_validate(event.data["team"])
