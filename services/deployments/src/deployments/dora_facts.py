"""S6, DORA kept current: one record per deployment (``dora_fact``), written with each of its
transitions, and the report over those records and the incident projection. The arithmetic,
failures and recoveries included, is :mod:`tandem.dora` (pure, shared with the dashboard).

A deployment's record is written only by a writer holding that deployment's write lock (a
transition), so its read-modify-write is serialised with the deployment's own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.models import (
    Deployment,
    DoraFact,
    DoraMetrics,
    DoraReport,
    Environment,
    IncidentView,
    MetricPublic,
)
from tandem.dora import BucketTable, DeploymentRecord, IncidentRecord, lead_times, report

#: One deployment's record, locked and read fresh; built once, like every statement of a hot
#: path.
_FACT = (select(DoraFact).where(DoraFact.deployment_id == bindparam("id"))  # type: ignore[arg-type]
         .with_for_update().execution_options(populate_existing=True))


async def _fact(session: AsyncSession, dep: Deployment) -> DoraFact:
    """The deployment's record (its write lock is held), or a new one."""
    fact = (await session.scalars(_FACT, {"id": dep.id})).first()
    if fact is None:
        fact = DoraFact(deployment_id=dep.id, service=dep.service, environment=dep.environment,
                        rework=dep.rework, lead_times_s=[])
        session.add(fact)
    return fact


async def record_outcome(session: AsyncSession, dep: Deployment, to: str,
                         now: datetime) -> None:
    """Fold a transition into the deployment's DORA record."""
    if to == "in_progress":
        return
    fact = await _fact(session, dep)
    fact.outcome = to
    if to == "succeeded":
        fact.deployed_at = fact.finished_at = now
        fact.lead_times_s = list(lead_times(
            (datetime.fromisoformat(c["committed_at"]) for c in dep.commits
             if c.get("committed_at")), now))
    elif to in ("failed", "canceled"):
        fact.finished_at = now
    elif to == "rolled_back":
        fact.rolled_back_at = now


def record_of(fact: DoraFact) -> DeploymentRecord:
    return DeploymentRecord(
        id=str(fact.deployment_id), service=fact.service, status=fact.outcome or "requested",
        deployed_at=fact.deployed_at, finished_at=fact.finished_at,
        rolled_back_at=fact.rolled_back_at, lead_times_s=tuple(fact.lead_times_s or ()),
        rework=fact.rework)


async def dora_report(session: AsyncSession, *, service: str | None, environment: Environment,
                      window: str, span: timedelta, until: datetime, buckets: BucketTable,
                      team: str | None = None, services: list[str] | None = None,
                      ) -> DoraReport:
    """DORA over ``[until - span, until)`` from the records (one indexed read each); with
    ``services`` (a team's), over those services only."""
    since = until - span
    facts_stmt = select(DoraFact).where(
        DoraFact.environment == environment.value,
        or_(DoraFact.finished_at >= since,  # type: ignore[operator]
            DoraFact.rolled_back_at >= since))  # type: ignore[operator]
    incidents_stmt = select(IncidentView).where(IncidentView.environment == environment.value)
    if service:
        facts_stmt = facts_stmt.where(DoraFact.service == service)
        incidents_stmt = incidents_stmt.where(IncidentView.service == service)
    if services is not None:
        facts_stmt = facts_stmt.where(DoraFact.service.in_(services))  # type: ignore[attr-defined]
        incidents_stmt = incidents_stmt.where(
            IncidentView.service.in_(services))  # type: ignore[attr-defined]
    facts = (await session.scalars(facts_stmt)).all()
    records = [record_of(f) for f in facts]
    # The window's incidents (time to restore) and any naming a deployment of the window.
    rows = (await session.scalars(incidents_stmt.where(or_(
        IncidentView.reported_at >= since,  # type: ignore[operator]
        IncidentView.cause_deployment_id.in_(  # type: ignore[union-attr]
            [f.deployment_id for f in facts]))))).all()
    incidents = [IncidentRecord(
        id=str(i.id), service=i.service, reported_at=i.reported_at, resolved_at=i.resolved_at,
        cause_deployment_id=str(i.cause_deployment_id) if i.cause_deployment_id else None)
        for i in rows]
    metrics = report(records, incidents, start=since, end=until, buckets=buckets)
    return DoraReport(
        service=service, team=team, services=services, environment=environment, window=window,
        since=since, until=until,
        metrics=DoraMetrics(**{name: MetricPublic(value=m.value, unit=m.unit,
                                                  sample_size=m.sample_size, bucket=m.bucket)
                               for name, m in metrics.items()}))  # type: ignore[arg-type]
