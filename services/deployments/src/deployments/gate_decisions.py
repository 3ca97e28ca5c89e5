"""The gate's decisions as stored and published: what the decision (:mod:`deployments.rules.gate`, a
pure function) is given from this service's projections, how a decision is kept on the
deployment and announced (``gate_decided``), and how a waiting gate is decided again when the
change it rests on moves.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    CompoundSelect,
    Integer,
    and_,
    bindparam,
    cast,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.config import DeploymentsSettings
from deployments.deployment import deployments
from deployments.events import ChangeRequest, DeploymentGateDecided, DeploymentUpdated
from deployments.models import Deployment, DeploymentPublic, FreezeView, IncidentView
from deployments.projections import change_facts, changes_seen
from deployments.recoveries import recovery_for
from deployments.rules.gate import (
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
from deployments.rules.recovery import Recovery
from tandem.db import JSONType, Prepared, UTCDateTime, utcnow


def _projections_query() -> CompoundSelect[Any]:
    # One statement for both projections: every round trip counts on the create path.
    freezes = select(
        literal_column("'freeze'").label("kind"), FreezeView.id, FreezeView.number,
        FreezeView.status, FreezeView.starts_at.label("at"), FreezeView.ends_at,
        FreezeView.source, FreezeView.incident_id, FreezeView.services,
        FreezeView.environments,
        cast(null(), Integer).label("priority"), cast(null(), Boolean).label("major"),
    ).where(FreezeView.status != "ended",
            FreezeView.starts_at <= bindparam("now", type_=UTCDateTime))  # type: ignore[operator]
    incidents = select(
        literal_column("'incident'"), IncidentView.id, IncidentView.number,
        IncidentView.status, IncidentView.reported_at, cast(null(), UTCDateTime),
        IncidentView.service, IncidentView.cause_deployment_id, cast(null(), JSONType),
        cast(null(), JSONType), IncidentView.priority, IncidentView.major,
    ).where(IncidentView.service == bindparam("service"),
            IncidentView.environment == "production",
            IncidentView.status.in_(sorted(OPEN_INCIDENT_STATUSES)))  # type: ignore[attr-defined]
    return union_all(freezes, incidents)


#: Built and compiled once: constructing the union (types, cache key) cost more than running it.
PROJECTIONS = Prepared(_projections_query())


async def gate_projections(session: AsyncSession, service: str, now: datetime,
                           ) -> tuple[tuple[FreezeFacts, ...], tuple[IncidentFacts, ...]]:
    """Freezes that may cover ``service`` now and its open production incidents."""
    freezes: list[FreezeFacts] = []
    incidents: list[IncidentFacts] = []
    for row in await PROJECTIONS.run(session, {"service": service, "now": now}):
        if row.kind == "freeze":
            freezes.append(FreezeFacts(
                id=row.id, number=row.number, services=tuple(row.services or ()),
                starts_at=row.at, ends_at=row.ends_at, status=row.status, source=row.source,
                incident_id=row.incident_id, environments=tuple(row.environments or ())))
        else:
            incidents.append(IncidentFacts(
                id=row.id, number=row.number, service=row.source, priority=row.priority,
                major=bool(row.major), status=row.status,
                cause_deployment_id=row.incident_id))
    return tuple(freezes), tuple(incidents)


async def first_decision(session: AsyncSession, *, service: str, environment: str,
                         mode: GateMode, change_id: uuid.UUID | None, now: datetime,
                         software_version: str, fixes: str | None,
                         ) -> tuple[GateDecision, ChangeFacts | None, Recovery | None]:
    """The gate of a deployment being recorded, with the named change and the recovery (a
    rollback or fix forward) it was decided on (a create reads them once: one statement for
    freezes and incidents, one for the named change, one for the service's recent history)."""
    named = await changes_seen.get(session, change_id)
    change = change_facts(named, named.rejected) if named is not None else None
    freezes, incidents = (await gate_projections(session, service, now)
                          if environment == "production" else ((), ()))
    recovery = await recovery_for(session, service=service, environment=environment,
                                  software_version=software_version, fixes=fixes,
                                  open_incidents=incidents)
    decision = decide_gate(GateInput(
        service=service, environment=environment, mode=mode, now=now, freezes=freezes,
        open_incidents=incidents, named_change_id=change_id, change=change,
        recovery=recovery.kind if recovery else None,
        recovers=recovery.incidents if recovery else ()))
    return decision, change, recovery


def store_decision(dep: Any, decision: GateDecision, now: datetime) -> None:
    """Keep ``decision`` on the deployment (a row or a create's plain record) and append it
    to its decision history."""
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


def change_request(dep: Any, kind: str, settings: DeploymentsSettings,
                   now: datetime) -> ChangeRequest:
    """What the changes service should record for a deployment that has no change (an
    emergency one, for a recovery, linked to the incident it recovers from)."""
    details = [f"Deployment {dep.number} of {dep.service} {dep.software_version} to "
               f"{dep.environment}."]
    title = f"Deploy {dep.service} {dep.software_version} to {dep.environment}"
    if kind == "emergency":
        what = ("Rollback to the last version that succeeded" if dep.recovery == "rollback"
                else "Fix forward")
        details.insert(0, f"{what}, recovering from a failed deployment: recorded "
                          "automatically by the deployments gate, with the deployment as its "
                          "reason.")
        title = f"Recover {dep.service}: {title[0].lower()}{title[1:]}"
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
        title=title[:200], incident_id=dep.recovers_incident_id if kind == "emergency" else None,
        description=" ".join(details), service=dep.service,
        environment=dep.environment,
        planned_start=now, planned_end=now + timedelta(minutes=settings.change_window_minutes),
    )


async def publish_decision(session: AsyncSession, dep: Any, decision: GateDecision,
                           settings: DeploymentsSettings, *, actor: str,
                           now: datetime) -> DeploymentPublic:
    """Write ``gate_decided`` for the decision stored on ``dep`` (with the change the changes
    service is asked to create, if any); returns the snapshot it carries."""
    request = (change_request(dep, decision.request_change, settings, now)
               if decision.request_change else None)
    return await deployments.record(session, dep, DeploymentGateDecided, actor=actor, now=now,
                                    gate=_gate_of(dep), change_request=request)


def _gate_of(dep: Any) -> dict[str, Any]:
    return {"decision": dep.gate_decision, "reasons": dep.gate_reasons,
            "change_id": dep.gate_change_id, "mode": dep.gate_mode,
            "decided_at": dep.gate_decided_at}


async def deployments_for_change(session: AsyncSession, change: ChangeFacts) -> list[Deployment]:
    """Requested deployments that carry ``change``, and the deployment that asked for it,
    under the write lock (in id order, so two writers lock them in the same order)."""
    clauses = [and_(Deployment.change_id == change.id, Deployment.status == "requested")]
    if change.deployment_id is not None:
        clauses.append(Deployment.id == change.deployment_id)
    stmt = deployments.locked(select(Deployment).where(or_(*clauses)).order_by(Deployment.id))
    return list((await session.scalars(stmt)).all())


async def redecide(session: AsyncSession, settings: DeploymentsSettings, dep: Deployment,
                   change: ChangeFacts, *, actor: str) -> bool:
    """React to news of ``change`` for a deployment that carries or asked for it (read under
    the write lock).

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
            await deployments.record(session, dep, DeploymentUpdated, actor=actor, now=now,
                                     changes={"gate.change_id": [before_link, str(change.id)]})
        return False
    freezes, incidents = (await gate_projections(session, dep.service, now)
                          if dep.environment == "production" else ((), ()))
    decision = decide_gate(GateInput(
        service=dep.service, environment=dep.environment, mode=GateMode(dep.gate_mode), now=now,
        freezes=freezes, open_incidents=incidents, named_change_id=dep.change_id,
        change=change, change_requested=dep.change_requested,
    ))
    reasons = [{"code": r.code, "message": r.message} for r in decision.reasons]
    if (decision.decision.value == dep.gate_decision and reasons == dep.gate_reasons
            and not linked):
        return False
    store_decision(dep, decision, now)
    await publish_decision(session, dep, decision, settings, actor=actor, now=now)
    return decision.decision.value != Decision.awaiting
