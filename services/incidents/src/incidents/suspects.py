"""S3 suspects: what changed on an incident's service shortly before it was reported.

Read from this service's projections (:mod:`incidents.projections`), never from another
service: production deployments that ran and production changes that were implemented within
``TANDEM_INCIDENTS_SUSPECT_WINDOW`` before ``reported_at``, newest first by when they went
live; a deployment once, with the change it carried.
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.config import IncidentsSettings
from incidents.models import ChangeView, DeploymentView, Incident
from incidents.schemas import Suspect, SuspectChange

#: Deployment states that mean it ran (requested and canceled ones never touched production).
RAN = ("in_progress", "succeeded", "failed", "rolled_back")


def window_seconds(settings: IncidentsSettings) -> int:
    """How far back suspects are looked for, in seconds (as events and answers say it)."""
    return int(settings.suspect_window_delta.total_seconds())


# Built once (each incident a monitor opens asks them; building the expressions cost more
# than running them). The projections are written by statements, not the ORM: read afresh.
_DEPLOYMENTS_IN_WINDOW = select(DeploymentView).execution_options(populate_existing=True).where(
    DeploymentView.service == bindparam("service"),
    DeploymentView.environment == "production",
    DeploymentView.status.in_(RAN),  # type: ignore[attr-defined]
    DeploymentView.deployed_at >= bindparam("start"),  # type: ignore[operator]
    DeploymentView.deployed_at <= bindparam("end"),  # type: ignore[operator]
)
_CHANGES_IN_WINDOW = select(ChangeView).execution_options(populate_existing=True).where(
    ChangeView.service == bindparam("service"),
    ChangeView.environment == "production",
    # A change canceled with its deployment (or by people) is no suspect.
    ChangeView.status != "canceled",
    or_(and_(ChangeView.implemented_at >= bindparam("start"),  # type: ignore[operator]
             ChangeView.implemented_at <= bindparam("end")),  # type: ignore[operator]
        ChangeView.id.in_(bindparam("carried", expanding=True)),  # type: ignore[attr-defined]
        ChangeView.deployment_id.in_(  # type: ignore[union-attr]
            bindparam("deployments", expanding=True))),
)


async def find_suspects(session: AsyncSession, settings: IncidentsSettings,
                        incident: Incident) -> list[Suspect]:
    """The service's production deployments that ran and changes implemented within the
    suspect window before the incident was reported, newest first by when they went live.
    A deployment is listed once, with the change it carried (named or its gate's receipt)
    attached; that change is not listed again."""
    start = incident.reported_at - settings.suspect_window_delta
    end = incident.reported_at
    window = {"service": incident.service, "start": start, "end": end}
    deployments = list((await session.scalars(_DEPLOYMENTS_IN_WINDOW, window)).all())
    carried = sorted({d.change_id for d in deployments if d.change_id is not None})
    changes = list((await session.scalars(_CHANGES_IN_WINDOW, {
        **window, "carried": carried, "deployments": [d.id for d in deployments]})).all())
    by_id = {c.id: c for c in changes}
    by_deployment = {c.deployment_id: c for c in changes if c.deployment_id is not None}
    attached: set[object] = set()
    found = []
    for d in deployments:
        if d.deployed_at is None:
            continue
        change = by_id.get(d.change_id) if d.change_id else None
        change = change or by_deployment.get(d.id)
        if change is not None:
            attached.add(change.id)
        found.append(Suspect(
            kind="deployment", id=d.id, number=d.number, service=d.service,
            environment=d.environment, status=d.status, at=d.live_at or d.deployed_at,
            version=d.software_version,
            change_id=change.id if change is not None else d.change_id,
            change=_change_of(change) if change is not None else None))
    found += [Suspect(kind="change", id=c.id, number=c.number, service=c.service,
                      environment=c.environment, status=c.status, at=c.implemented_at,
                      type=c.type, title=c.title)
              for c in changes if c.id not in attached and c.implemented_at is not None
              and start <= c.implemented_at <= end]
    return sorted(found, key=lambda s: (s.at, str(s.id)), reverse=True)


def _change_of(change: ChangeView) -> SuspectChange:
    return SuspectChange(id=change.id, number=change.number, type=change.type,
                         title=change.title, status=change.status)
