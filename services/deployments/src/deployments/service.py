"""Deployment rules: recording, the lifecycle, the gate's decisions and DORA facts, each change
written with its event in the caller's transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Integer,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.config import DeploymentsSettings
from deployments.dora import (
    DEPLOYED_OUTCOMES,
    BucketTable,
    DeploymentFact,
    RestoreFact,
    dora_metrics,
)
from deployments.events import (
    ChangeRequest,
    DeploymentCreatedData,
    DeploymentTransitionedData,
    DeploymentUpdatedData,
    GateDecidedData,
    event_data,
)
from deployments.gate import (
    OPEN_INCIDENT_STATUSES,
    ChangeFacts,
    Decision,
    FreezeFacts,
    GateDecision,
    GateInput,
    GateMode,
    IncidentFacts,
    decide_gate,
)
from deployments.models import (
    ChangeView,
    Deployment,
    DeploymentCreate,
    DeploymentPublic,
    DoraFact,
    DoraMetrics,
    DoraReport,
    Environment,
    FreezeView,
    GatePublic,
    IncidentView,
    MetricPublic,
)
from tandem.db import JSONType, UTCDateTime, new_id, utcnow
from tandem.events import new_event
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.problems import Problem, not_found
from tandem.settings import PlatformSettings
from tandem.transitions import StateMachine

LIFECYCLE = StateMachine(
    "deployment",
    {
        "requested": {"in_progress", "canceled"},
        "in_progress": {"succeeded", "failed", "canceled"},
        "succeeded": {"rolled_back"},
        "failed": set(),
        "rolled_back": set(),
        "canceled": set(),
    },
)

SOURCE = "deployments"


# --- snapshots and events ---------------------------------------------------------------------


def gate_public(dep: Deployment) -> GatePublic:
    return GatePublic.model_validate({
        "decision": dep.gate_decision, "reasons": dep.gate_reasons,
        "change_id": dep.gate_change_id, "mode": dep.gate_mode, "decided_at": dep.gate_decided_at,
    })


def public(dep: Deployment) -> DeploymentPublic:
    """The deployment as the API returns it (and as its events carry it)."""
    return DeploymentPublic.model_validate({
        "id": dep.id, "number": dep.number, "service": dep.service,
        "environment": dep.environment, "version": dep.version, "artifact": dep.artifact,
        "ref": dep.ref, "commits": dep.commits, "pipeline": dep.pipeline,
        "triggered_by": dep.triggered_by, "change_id": dep.change_id, "status": dep.status,
        "gate": gate_public(dep), "rework": dep.rework,
        "allowed_transitions": LIFECYCLE.allowed(dep.status), "started_at": dep.started_at,
        "finished_at": dep.finished_at, "revision": dep.revision, "created_at": dep.created_at,
        "updated_at": dep.updated_at,
    })


def _emit(session: AsyncSession, platform: PlatformSettings, dep: Deployment, verb: str,
          actor: str, data: dict[str, Any]) -> None:
    event = new_event(service=SOURCE, type=f"tandem.deployment.{verb}", subject=dep.id,
                      sequence=dep.revision, actor=actor, data=data)
    add_event(session, topic=platform.topic(SOURCE), event=event)


def _bump(dep: Deployment, now: datetime) -> None:
    dep.revision += 1
    dep.updated_at = now


# --- reading ----------------------------------------------------------------------------------


async def get_deployment(session: AsyncSession, ref: str) -> Deployment:
    """A deployment by id or by number (``DEP0009001``); 404 otherwise."""
    try:
        dep = await session.get(Deployment, uuid.UUID(ref))
    except ValueError:
        dep = (await session.scalars(
            select(Deployment).where(Deployment.number == ref.upper()))).first()
    if dep is None:
        raise not_found("deployment", ref)
    return dep


# --- the gate ---------------------------------------------------------------------------------


def change_facts(view: ChangeView | None) -> ChangeFacts | None:
    if view is None:
        return None
    return ChangeFacts(id=view.id, number=view.number, type=view.type, service=view.service,
                       status=view.status, planned_start=view.planned_start,
                       planned_end=view.planned_end, incident_id=view.incident_id,
                       rejected=view.rejected)


def _projections_query() -> CompoundSelect[Any]:
    # One statement for both projections: every round trip counts on the create path.
    freezes = select(
        literal_column("'freeze'").label("kind"), FreezeView.id, FreezeView.number,
        FreezeView.status, FreezeView.starts_at.label("at"), FreezeView.ends_at,
        FreezeView.source, FreezeView.incident_id, FreezeView.services,
        cast(null(), Integer).label("priority"), cast(null(), Boolean).label("major"),
    ).where(FreezeView.status != "ended",
            FreezeView.starts_at <= bindparam("now", type_=UTCDateTime))  # type: ignore[operator]
    incidents = select(
        literal_column("'incident'"), IncidentView.id, IncidentView.number,
        IncidentView.status, IncidentView.reported_at, cast(null(), UTCDateTime),
        IncidentView.service, cast(null(), Uuid), cast(null(), JSONType),
        IncidentView.priority, IncidentView.major,
    ).where(IncidentView.service == bindparam("service"),
            IncidentView.environment == "production",
            IncidentView.status.in_(sorted(OPEN_INCIDENT_STATUSES)))  # type: ignore[attr-defined]
    return union_all(freezes, incidents)


#: Built once: constructing the union (types, cache key) cost more than running it.
PROJECTIONS = _projections_query()


async def gate_projections(session: AsyncSession, service: str, now: datetime,
                           ) -> tuple[tuple[FreezeFacts, ...], tuple[IncidentFacts, ...]]:
    """Freezes that may cover ``service`` now and its open production incidents."""
    freezes: list[FreezeFacts] = []
    incidents: list[IncidentFacts] = []
    for row in (await session.execute(PROJECTIONS, {"service": service, "now": now})).all():
        if row.kind == "freeze":
            freezes.append(FreezeFacts(
                id=row.id, number=row.number, services=tuple(row.services or ()),
                starts_at=row.at, ends_at=row.ends_at, status=row.status, source=row.source,
                incident_id=row.incident_id))
        else:
            incidents.append(IncidentFacts(
                id=row.id, number=row.number, service=row.source, priority=row.priority,
                major=bool(row.major), status=row.status))
    return tuple(freezes), tuple(incidents)


def _set_gate(dep: Deployment, decision: GateDecision, now: datetime) -> None:
    """Store ``decision`` on the deployment and append it to its decision history."""
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    dep.gate_decision = decision.decision.value
    dep.gate_reasons = reasons
    dep.gate_change_id = decision.change_id or dep.gate_change_id
    dep.gate_mode = decision.mode.value
    dep.gate_decided_at = now
    if decision.request_change:
        dep.change_requested = True
    dep.gate_history = [*(dep.gate_history or []), {
        "decision": dep.gate_decision, "reasons": reasons, "mode": dep.gate_mode,
        "change_id": str(dep.gate_change_id) if dep.gate_change_id else None,
        "decided_at": now.isoformat()}]


def change_request(dep: Deployment, kind: str, settings: DeploymentsSettings,
                   now: datetime) -> ChangeRequest:
    """What the changes service should record for a deployment that has no change."""
    details = [f"Deployment {dep.number} of {dep.service} {dep.version} to {dep.environment}."]
    if dep.artifact:
        details.append(f"Artifact: {dep.artifact}.")
    if dep.ref:
        details.append(f"Ref: {dep.ref}.")
    if dep.commits:
        details.append(f"Commits: {len(dep.commits)}.")
    if dep.pipeline and dep.pipeline.get("run_url"):
        details.append(f"Pipeline run: {dep.pipeline['run_url']}.")
    return ChangeRequest(
        type=kind,  # type: ignore[arg-type]
        title=f"Deploy {dep.service} {dep.version} to {dep.environment}"[:200],
        description=" ".join(details), service=dep.service,
        environment=dep.environment,  # type: ignore[arg-type]
        planned_start=now, planned_end=now + timedelta(minutes=settings.change_window_minutes),
    )


def _emit_gate(session: AsyncSession, platform: PlatformSettings, settings: DeploymentsSettings,
               dep: Deployment, decision: GateDecision, actor: str, now: datetime,
               snapshot: DeploymentPublic | None = None) -> DeploymentPublic:
    snapshot = snapshot or public(dep)
    request = (change_request(dep, decision.request_change, settings, now)
               if decision.request_change else None)
    _emit(session, platform, dep, "gate_decided", actor, event_data(
        GateDecidedData(deployment=snapshot, gate=snapshot.gate, change_request=request)))
    return snapshot


async def create_deployment(session: AsyncSession, platform: PlatformSettings,
                            settings: DeploymentsSettings, body: DeploymentCreate, *,
                            actor: str, now: datetime | None = None) -> DeploymentPublic:
    """Record a deployment, decide its gate, and publish ``created`` and ``gate_decided``.

    The hot path of every pipeline: one statement reads both gate projections, one takes the
    number, and every row (deployment, two outbox events, idempotency record) is flushed
    once at commit.
    """
    now = now or utcnow()
    production = body.environment == "production"
    named = await session.get(ChangeView, body.change_id) if body.change_id else None
    freezes, incidents = (await gate_projections(session, body.service, now) if production
                          else ((), ()))
    decision = decide_gate(GateInput(
        service=body.service, environment=body.environment.value, mode=settings.gate_mode,
        now=now, freezes=freezes, open_incidents=incidents, named_change_id=body.change_id,
        change=change_facts(named),
    ))
    commits = [{"sha": c.sha, "committed_at": c.committed_at.astimezone(UTC).isoformat()}
               for c in body.commits]
    # The new row is a plain record inserted with one Core statement: the ORM's unit of work
    # (and pydantic's default factories on a table model) cost more than the insert itself.
    dep: Any = SimpleNamespace(
        id=new_id(), number=await next_number(session, "DEP"), service=body.service,
        environment=body.environment.value, version=body.version, artifact=body.artifact,
        ref=body.ref, commits=commits,
        pipeline=body.pipeline.model_dump() if body.pipeline else None, triggered_by=actor,
        change_id=body.change_id, status="requested", gate_decision="", gate_reasons=[],
        gate_change_id=None, gate_mode="", gate_decided_at=now, gate_history=[],
        change_requested=False,
        # Unplanned work: shipped while the service has an open production incident.
        rework=production and (bool(incidents) or (named is not None
                                                    and named.type == "emergency")),
        started_at=None, finished_at=None, revision=2, created_at=now, updated_at=now,
    )
    _set_gate(dep, decision, now)
    await session.execute(insert(Deployment.__table__), [vars(dep)])  # type: ignore[arg-type]
    snapshot = public(dep)
    # ``created`` is revision 1 and ``gate_decided`` revision 2, both written now.
    created = snapshot.model_copy(update={"revision": 1})
    dep.revision = 1
    _emit(session, platform, dep, "created", actor,
          event_data(DeploymentCreatedData(deployment=created)))
    dep.revision = 2
    return _emit_gate(session, platform, settings, dep, decision, actor, now, snapshot)


async def redecide(session: AsyncSession, platform: PlatformSettings,
                   settings: DeploymentsSettings, dep: Deployment, change: ChangeView, *,
                   actor: str) -> bool:
    """React to news of ``change`` for a deployment that carries or asked for it.

    Links a change made for the deployment to its gate; an awaiting gate of a requested
    deployment is decided again. True when the gate left ``awaiting``.
    """
    now = utcnow()
    linked = dep.gate_change_id is None and change.deployment_id == dep.id
    before_link = dep.gate_change_id
    if linked:
        dep.gate_change_id = change.id
    if dep.gate_decision != Decision.awaiting or dep.status != "requested":
        if linked:
            _bump(dep, now)
            _emit(session, platform, dep, "updated", actor, event_data(DeploymentUpdatedData(
                deployment=public(dep),
                changes={"gate.change_id": [before_link, str(change.id)]})))
        return False
    freezes, incidents = (await gate_projections(session, dep.service, now)
                          if dep.environment == "production" else ((), ()))
    decision = decide_gate(GateInput(
        service=dep.service, environment=dep.environment, mode=GateMode(dep.gate_mode), now=now,
        freezes=freezes, open_incidents=incidents, named_change_id=dep.change_id,
        change=change_facts(change), change_requested=dep.change_requested,
    ))
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    if (decision.decision.value == dep.gate_decision and reasons == dep.gate_reasons
            and not linked):
        return False
    _set_gate(dep, decision, now)
    _bump(dep, now)
    _emit_gate(session, platform, settings, dep, decision, actor, now)
    return decision.decision.value != Decision.awaiting


# --- the lifecycle ----------------------------------------------------------------------------


async def transition(session: AsyncSession, platform: PlatformSettings, dep: Deployment,
                     to: str, reason: str, *, actor: str,
                     now: datetime | None = None) -> DeploymentPublic:
    """Move a deployment; starting one needs an allowed gate. Keeps its DORA facts current."""
    LIFECYCLE.check(dep.status, to)
    if to == "in_progress" and dep.gate_decision != Decision.allowed:
        raise Problem(409, f"Deployment {dep.number} cannot start: its gate is "
                           f"{dep.gate_decision}.", type_="urn:tandem:problem:gate-not-allowed",
                      gate=gate_public(dep).model_dump(mode="json"),
                      allowed=[s for s in LIFECYCLE.allowed(dep.status) if s != "in_progress"])
    now = now or utcnow()
    before = dep.status
    dep.status = to
    if to == "in_progress":
        dep.started_at = now
    elif to in ("succeeded", "failed", "canceled"):
        dep.finished_at = now
    _bump(dep, now)
    await record_outcome(session, dep, to, now)
    snapshot = public(dep)
    _emit(session, platform, dep, "transitioned", actor, event_data(DeploymentTransitionedData(
        deployment=snapshot, from_=before, to=to, reason=reason)))
    return snapshot


# --- DORA facts -------------------------------------------------------------------------------


async def dora_fact(session: AsyncSession, dep: Deployment) -> DoraFact:
    fact = await session.get(DoraFact, dep.id)
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
    fact = await dora_fact(session, dep)
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


async def record_incident_cause(session: AsyncSession, incident: IncidentView) -> None:
    """An incident named a deployment its cause: that deployment needed intervention."""
    if incident.cause_deployment_id is None:
        return
    dep = await session.get(Deployment, incident.cause_deployment_id)
    if dep is None:
        return
    fact = await dora_fact(session, dep)
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


# --- long polls -------------------------------------------------------------------------------


class GateSignals:
    """Wakes ``GET /{id}/gate?wait=`` readers when a consumed event changed their gate.

    A handler notes the deployments an event touched; once the consumer has committed, the
    service's ``on_event_applied`` hook fires them. Each waiter owns an ``asyncio.Event``.
    """

    def __init__(self, max_pending: int = 10_000) -> None:
        self._waiters: dict[uuid.UUID, set[asyncio.Event]] = {}
        self._pending: OrderedDict[uuid.UUID, set[uuid.UUID]] = OrderedDict()
        self._max_pending = max_pending

    def note(self, event_id: uuid.UUID, deployment_id: uuid.UUID) -> None:
        """Remember that the event being applied touched ``deployment_id``'s gate."""
        self._pending.setdefault(event_id, set()).add(deployment_id)
        while len(self._pending) > self._max_pending:  # a rolled-back event never fires
            self._pending.popitem(last=False)

    def fire(self, event_id: uuid.UUID) -> None:
        """The event's transaction committed: wake whoever waits on what it touched."""
        for deployment_id in self._pending.pop(event_id, ()):
            for waiter in self._waiters.get(deployment_id, ()):
                waiter.set()

    @contextmanager
    def watch(self, deployment_id: uuid.UUID) -> Iterator[asyncio.Event]:
        """An event set when ``deployment_id``'s gate may have changed (register, then read)."""
        waiter = asyncio.Event()
        self._waiters.setdefault(deployment_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(deployment_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[deployment_id]


async def deployments_for_change(session: AsyncSession, change: ChangeView) -> list[Deployment]:
    """Requested deployments that carry ``change``, and the deployment that asked for it."""
    clauses = [and_(Deployment.change_id == change.id, Deployment.status == "requested")]
    if change.deployment_id is not None:
        clauses.append(Deployment.id == change.deployment_id)
    return list((await session.scalars(select(Deployment).where(or_(*clauses)))).all())


# --- DORA report ------------------------------------------------------------------------------


async def dora_report(session: AsyncSession, *, service: str | None, environment: Environment,
                      window: str, span: timedelta, until: datetime,
                      buckets: BucketTable) -> DoraReport:
    """DORA over ``[until - span, until)`` from the fact rows (one indexed read each)."""
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
        service=service, environment=environment, window=window, since=since, until=until,
        metrics=DoraMetrics(**{name: MetricPublic(value=m.value, unit=m.unit,
                                                  sample_size=m.sample_size, bucket=m.bucket)
                               for name, m in metrics.items()}))  # type: ignore[arg-type]
