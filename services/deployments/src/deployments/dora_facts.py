"""S6, DORA kept current: one fact row per deployment, folded from its own transitions and
from the incidents that name it their cause, and the report over those rows (the arithmetic is
:mod:`deployments.rules.dora`, pure).

A deployment's fact row is written only by a writer holding that deployment's write lock (a
transition, or the reaction to an incident naming it), so its read-modify-write is serialised
with the deployment's own.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.deployment import deployments
from deployments.models import (
    Deployment,
    DoraFact,
    DoraMetrics,
    DoraReport,
    Environment,
    IncidentView,
    MetricPublic,
)
from deployments.projections import IncidentSnapshot
from deployments.rules.dora import (
    DEPLOYED_OUTCOMES,
    BucketTable,
    DeploymentFact,
    RestoreFact,
    dora_metrics,
)

#: One deployment's fact row, locked and read fresh (another writer's bulk recovery may have
#: moved it since this session last saw it); built once, like every statement of a hot path.
_FACT = (select(DoraFact).where(DoraFact.deployment_id == bindparam("id"))  # type: ignore[arg-type]
         .with_for_update().execution_options(populate_existing=True))


async def _fact(session: AsyncSession, dep: Deployment) -> DoraFact:
    """The deployment's fact row (its write lock is held), or a new one."""
    fact = (await session.scalars(_FACT, {"id": dep.id})).first()
    if fact is None:
        fact = DoraFact(deployment_id=dep.id, service=dep.service, environment=dep.environment,
                        rework=dep.rework, lead_times_s=[])
        session.add(fact)
    return fact


async def record_outcome(session: AsyncSession, dep: Deployment, to: str,
                         now: datetime) -> None:
    """Fold a transition into the deployment's DORA facts (and recover earlier failures)."""
    if to == "in_progress":
        return
    fact = await _fact(session, dep)
    fact.outcome = to
    if to == "succeeded":
        fact.deployed_at = fact.finished_at = now
        fact.lead_times_s = [(now - datetime.fromisoformat(c["committed_at"])).total_seconds()
                             for c in dep.commits]
        if fact.failed and fact.failure_started_at is None:
            fact.failure_started_at = now  # named as a cause before it finished
        # A later successful deployment of the service is the fix of its open failures.
        await session.execute(
            update(DoraFact)
            .where(DoraFact.service == dep.service, DoraFact.environment == dep.environment,
                   DoraFact.failed, DoraFact.recovered_at.is_(None),  # type: ignore[union-attr]
                   DoraFact.failure_known_at <= now,  # type: ignore[operator]
                   DoraFact.deployment_id != dep.id)
            .values(recovered_at=now)
            .execution_options(synchronize_session=False)
        )
    elif to == "failed":
        fact.finished_at = now
        fact.failed = True
        fact.failure_started_at = fact.failure_known_at = now
    elif to == "rolled_back":
        # The rollback deployed is the recovery of the failure that began when it went live.
        fact.failed = True
        fact.failure_started_at = fact.failure_started_at or fact.deployed_at or now
        fact.failure_known_at = fact.failure_known_at or now
        fact.recovered_at = fact.recovered_at or now
    elif to == "canceled":
        fact.finished_at = now


async def record_incident_cause(session: AsyncSession, incident: IncidentSnapshot) -> None:
    """An incident named a deployment its cause: that deployment needed intervention (and
    the incident's resolution may be its recovery)."""
    dep = await deployments.find(session, incident.cause_deployment_id, for_update=True)
    if dep is None:
        return
    assert incident.reported_at is not None  # the projection fills it in
    fact = await _fact(session, dep)
    if not fact.failed:
        fact.failed = True
        fact.failure_started_at = fact.deployed_at or fact.finished_at
        fact.failure_known_at = incident.reported_at
        if fact.failure_started_at is not None:
            after = max(incident.reported_at, fact.failure_started_at)
            fact.recovered_at = await session.scalar(
                select(func.min(DoraFact.deployed_at)).where(
                    DoraFact.service == fact.service, DoraFact.environment == fact.environment,
                    DoraFact.outcome.in_(DEPLOYED_OUTCOMES),  # type: ignore[union-attr]
                    DoraFact.deployed_at > after,  # type: ignore[operator]
                    DoraFact.deployment_id != fact.deployment_id))
    if incident.resolved_at is not None and fact.failed and (
            fact.recovered_at is None or incident.resolved_at < fact.recovered_at):
        fact.recovered_at = incident.resolved_at


async def dora_report(session: AsyncSession, *, service: str | None, environment: Environment,
                      window: str, span: timedelta, until: datetime, buckets: BucketTable,
                      team: str | None = None, services: list[str] | None = None,
                      ) -> DoraReport:
    """DORA over ``[until - span, until)`` from the fact rows (one indexed read each); with
    ``services`` (a team's), over those services only."""
    since = until - span
    facts_stmt = select(DoraFact).where(
        DoraFact.environment == environment.value,
        or_(DoraFact.finished_at >= since,  # type: ignore[operator]
            DoraFact.failure_started_at >= since))  # type: ignore[operator]
    incidents_stmt = select(IncidentView.reported_at, IncidentView.resolved_at).where(
        IncidentView.environment == environment.value,
        IncidentView.reported_at >= since)  # type: ignore[operator]
    if service:
        facts_stmt = facts_stmt.where(DoraFact.service == service)
        incidents_stmt = incidents_stmt.where(IncidentView.service == service)
    if services is not None:
        facts_stmt = facts_stmt.where(DoraFact.service.in_(services))  # type: ignore[attr-defined]
        incidents_stmt = incidents_stmt.where(
            IncidentView.service.in_(services))  # type: ignore[attr-defined]
    facts = [
        DeploymentFact(outcome=f.outcome, deployed_at=f.deployed_at, finished_at=f.finished_at,
                       lead_times_s=tuple(f.lead_times_s or ()), failed=f.failed,
                       failure_started_at=f.failure_started_at, recovered_at=f.recovered_at,
                       rework=f.rework)
        for f in (await session.scalars(facts_stmt)).all()
    ]
    incidents = [RestoreFact(reported_at=r, resolved_at=s)
                 for r, s in (await session.execute(incidents_stmt)).all()]
    metrics = dora_metrics(facts, incidents, start=since, end=until, buckets=buckets)
    return DoraReport(
        service=service, team=team, services=services, environment=environment, window=window,
        since=since, until=until,
        metrics=DoraMetrics(**{name: MetricPublic(value=m.value, unit=m.unit,
                                                  sample_size=m.sample_size, bucket=m.bucket)
                               for name, m in metrics.items()}))  # type: ignore[arg-type]
