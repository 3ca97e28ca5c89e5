"""S3 suspects: what changed on an incident's service shortly before it was reported.

Read from this service's projections (:mod:`incidents.projections`), never from another
service: production deployments that ran and production changes that were implemented within
``TANDEM_INCIDENTS_SUSPECT_WINDOW`` before ``reported_at``, newest first.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.config import IncidentsSettings
from incidents.models import ChangeView, DeploymentView, Incident
from incidents.schemas import Suspect

#: Deployment states that mean it ran (requested and canceled ones never touched production).
RAN = ("in_progress", "succeeded", "failed", "rolled_back")


def window_seconds(settings: IncidentsSettings) -> int:
    """How far back suspects are looked for, in seconds (as events and answers say it)."""
    return int(settings.suspect_window_delta.total_seconds())


async def find_suspects(session: AsyncSession, settings: IncidentsSettings,
                        incident: Incident) -> list[Suspect]:
    """The service's production deployments and implemented changes within the suspect
    window before the incident was reported, newest first."""
    start = incident.reported_at - settings.suspect_window_delta
    end = incident.reported_at
    # The projections are written by statements, not the ORM: read them afresh.
    fresh = {"populate_existing": True}
    deployments = await session.scalars(select(DeploymentView).execution_options(**fresh).where(
        DeploymentView.service == incident.service,
        DeploymentView.environment == "production",
        DeploymentView.status.in_(RAN),  # type: ignore[attr-defined]
        DeploymentView.deployed_at >= start,  # type: ignore[operator]
        DeploymentView.deployed_at <= end,  # type: ignore[operator]
    ))
    changes = await session.scalars(select(ChangeView).execution_options(**fresh).where(
        ChangeView.service == incident.service,
        ChangeView.environment == "production",
        # A change canceled with its deployment (or by people) is no suspect.
        ChangeView.status != "canceled",
        ChangeView.implemented_at >= start,  # type: ignore[operator]
        ChangeView.implemented_at <= end,  # type: ignore[operator]
    ))
    found = [Suspect(kind="deployment", id=d.id, number=d.number, service=d.service,
                     environment=d.environment, status=d.status, at=d.deployed_at,
                     version=d.software_version, change_id=d.change_id)
             for d in deployments.all() if d.deployed_at is not None]
    found += [Suspect(kind="change", id=c.id, number=c.number, service=c.service,
                      environment=c.environment, status=c.status, at=c.implemented_at,
                      type=c.type, title=c.title)
              for c in changes.all() if c.implemented_at is not None]
    return sorted(found, key=lambda s: (s.at, str(s.id)), reverse=True)
