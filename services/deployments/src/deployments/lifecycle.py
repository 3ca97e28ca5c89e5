"""A deployment's lifecycle: recording one (with its first gate decision) and moving it
through its states (``deployment.LIFECYCLE``), each change published with its event in the
caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.config import DeploymentsSettings
from deployments.deployment import LIFECYCLE, deployments, gate_public
from deployments.dora_facts import record_outcome
from deployments.errors import GateNotAllowed
from deployments.events import DeploymentCreated, DeploymentTransitioned
from deployments.gate_decisions import first_decision, publish_decision, store_decision
from deployments.models import Deployment, DeploymentCreate, DeploymentPublic, DoraFact
from deployments.rules.gate import Decision
from tandem.db import Prepared, new_id, utcnow
from tandem.dora import lead_times
from tandem.numbers import next_numbers

_deployment = Deployment.__table__  # type: ignore[attr-defined]
_dora_fact = DoraFact.__table__  # type: ignore[attr-defined]
#: The create's row: a prepared insert of the plain record (every pipeline's hot path).
_RECORD = Prepared(insert(_deployment))


async def record_deployment(session: AsyncSession, settings: DeploymentsSettings,
                            body: DeploymentCreate, *, actor: str,
                            now: datetime | None = None, external_id: str | None = None,
                            commits: list[dict[str, Any]] | None = None,
                            ) -> DeploymentPublic:
    """Record a deployment, decide its gate, and publish ``created`` and ``gate_decided``.

    The hot path of every pipeline: one statement reads both gate projections (and one the
    named change, when there is one), one takes the number, and the row is one Core insert;
    the events are written by ``deployments.record`` on the plain record the row comes from.
    """
    now = now or utcnow()
    production = body.environment == "production"
    decision, change, recovery = await first_decision(
        session, service=body.service, environment=body.environment.value,
        mode=settings.gate_mode, change_id=body.change_id, now=now,
        software_version=body.software_version, fixes=body.fixes)
    # A webhook's commits may have no time (``commits``); the API's always have one.
    if commits is None:
        commits = [{"sha": c.sha, "committed_at": c.committed_at.astimezone(UTC).isoformat()}
                   for c in body.commits]
    # A plain record, inserted with one Core statement: the ORM's unit of work (and pydantic's
    # default factories on a table model) cost more than the insert itself.
    dep: Any = SimpleNamespace(
        id=new_id(), number=await deployments.new_number(session), service=body.service,
        environment=body.environment.value, software_version=body.software_version,
        artifact=body.artifact, ref=body.ref, commits=commits,
        pipeline=body.pipeline.model_dump() if body.pipeline else None, triggered_by=actor,
        change_id=body.change_id, status="requested", gate_decision="", gate_reasons=[],
        gate_change_id=None, gate_mode="", gate_decided_at=now, gate_history=[],
        change_requested=False,
        # Rework (DORA 2024): unplanned, made because of a production incident: a rollback,
        # a fix forward naming it, or a deployment carrying an emergency change linked to it.
        rework=production and (recovery is not None or (
            change is not None and change.type == "emergency"
            and change.incident_id is not None)),
        fixes=body.fixes, recovery=recovery.kind if recovery else None,
        recovers_deployment_id=recovery.deployment_id if recovery else None,
        recovers_incident_id=recovery.incident_id if recovery else None,
        started_at=None, finished_at=None, external_id=external_id, imported=False,
        summary=None, links=[], version=0,
        created_at=now, updated_at=now,
    )
    store_decision(dep, decision, now)
    # ``created`` makes it version 1 (its snapshot carries the decision), ``gate_decided`` 2.
    await deployments.record(session, dep, DeploymentCreated, actor=actor, now=now)
    snapshot = await publish_decision(session, dep, decision, settings, actor=actor, now=now)
    await _RECORD.run(session, vars(dep))
    return snapshot


#: The states a deployment reported after the fact (history, a change event) may be in.
REPORTED_STATES = ("succeeded", "failed", "rolled_back", "canceled")


@dataclass(frozen=True)
class Reported:
    """A deployment that already happened, as its reporter gives it (a PagerDuty change event,
    a line of history): its final ``status`` (``REPORTED_STATES``) at its own times. A rolled
    back one went live at ``finished_at`` and was rolled back at ``rolled_back_at``."""

    service: str
    environment: str
    software_version: str
    status: str
    finished_at: datetime
    external_id: str
    started_at: datetime | None = None
    rolled_back_at: datetime | None = None
    commits: list[dict[str, Any]] = field(default_factory=list)
    artifact: str | None = None
    ref: str | None = None
    pipeline: dict[str, Any] | None = None
    summary: str | None = None
    links: list[dict[str, Any]] = field(default_factory=list)


async def record_reported(session: AsyncSession, reports: list[Reported], *, actor: str,
                          imported: bool, origin: str) -> list[DeploymentPublic]:
    """Record deployments that already happened in their final state at their own times,
    each with its DORA record, as one ``created`` event each (``data.imported`` says whether
    it is history).

    No gate is asked: the deployment is over. Its gate shows ``allowed`` (mode ``off``) with
    the reason, so a reader sees it was reported, not decided. Consumers see one ``created``
    with a final status, never a ``transitioned``: nothing reacts to it as to a live failure.
    A batch takes its numbers with one statement and inserts its rows with one each (no
    flush per record).
    """
    for r in reports:
        if r.status not in REPORTED_STATES:
            raise ValueError(f"status {r.status!r} is not one of {', '.join(REPORTED_STATES)}")
    now = utcnow()
    numbers = await next_numbers(session, deployments.number_prefix, len(reports))
    rows: list[dict[str, Any]] = []
    facts: list[dict[str, Any]] = []
    snapshots = []
    reason = [{"code": "reported", "message": f"Reported after the fact ({origin}); no gate "
               "was asked."}]
    for r, number in zip(reports, numbers, strict=True):
        began = r.started_at or r.finished_at
        live = r.status in ("succeeded", "rolled_back")
        dep: Any = SimpleNamespace(
            id=new_id(), number=number, service=r.service, environment=r.environment,
            software_version=r.software_version, artifact=r.artifact, ref=r.ref,
            commits=r.commits, pipeline=r.pipeline, triggered_by=actor, change_id=None,
            status=r.status, gate_decision="allowed", gate_reasons=reason,
            gate_change_id=None, gate_mode="off", gate_decided_at=began, gate_history=[],
            change_requested=False, rework=False, fixes=None, recovery=None,
            recovers_deployment_id=None, recovers_incident_id=None, started_at=began,
            finished_at=r.finished_at, external_id=r.external_id, imported=imported,
            summary=r.summary, links=r.links, version=0, created_at=began, updated_at=now,
        )
        snapshots.append(await deployments.record(session, dep, DeploymentCreated,
                                                  actor=actor, now=now, imported=imported))
        rows.append(vars(dep))
        facts.append({
            "deployment_id": dep.id, "service": r.service, "environment": r.environment,
            "outcome": r.status, "deployed_at": r.finished_at if live else None,
            "finished_at": r.finished_at,
            "rolled_back_at": (r.rolled_back_at or r.finished_at)
            if r.status == "rolled_back" else None,
            "rework": False,
            "lead_times_s": list(lead_times((datetime.fromisoformat(c["committed_at"])
                                             for c in r.commits if c.get("committed_at")),
                                            r.finished_at)) if live else [],
        })
    if rows:
        await session.execute(insert(_deployment), rows)
        await session.execute(insert(_dora_fact), facts)
    return snapshots


def check_move(dep: Deployment, to: str) -> None:
    """Refuse a move its state machine does not allow (``IllegalTransition``), and starting
    a deployment whose gate is not ``allowed`` (``GateNotAllowed``)."""
    LIFECYCLE.check(dep.status, to)
    if to == "in_progress" and dep.gate_decision != Decision.allowed:
        raise GateNotAllowed(dep.number, gate_public(dep).model_dump(mode="json"), allowed=[
            s for s in LIFECYCLE.allowed(dep.status) if s != "in_progress"])


async def transition(session: AsyncSession, dep: Deployment, to: str, reason: str, *,
                     actor: str, now: datetime | None = None) -> DeploymentPublic:
    """Move a deployment read under the write lock; keeps its DORA facts current."""
    check_move(dep, to)
    now = now or utcnow()
    before = dep.status
    dep.status = to
    if to == "in_progress":
        dep.started_at = now
    elif to in ("succeeded", "failed", "canceled"):
        dep.finished_at = now
    snapshot = await deployments.record(session, dep, DeploymentTransitioned, actor=actor,
                                        now=now, from_=before, to=to, reason=reason)
    # After the version moved: the facts' reads flush the row once, with its new version.
    await record_outcome(session, dep, to, now)
    return snapshot
