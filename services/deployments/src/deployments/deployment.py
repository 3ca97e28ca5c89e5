"""The deployment aggregate: its states, its snapshot (the resource as the API returns it and as
its events carry it), and ``deployments``, through which every deployment is read, locked and
published (:mod:`tandem.aggregate`).

What happens to a deployment lives by name beside it: recording one and moving it in
:mod:`deployments.lifecycle`, its gate in :mod:`deployments.gate_decisions`, its DORA facts in
:mod:`deployments.dora_facts`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from deployments.models import Deployment, DeploymentPublic, GatePublic
from tandem.aggregate import Aggregate
from tandem.transitions import StateMachine, TransitionRequest

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


class DeploymentTransitionRequest(TransitionRequest):
    """The body of ``POST /api/v1/deployments/{ref}/transitions``."""

    machines = (LIFECYCLE,)


def gate_public(dep: Any) -> GatePublic:
    """The deployment's current gate decision, as the API shows it."""
    return GatePublic.model_validate({
        "decision": dep.gate_decision, "reasons": dep.gate_reasons,
        "change_id": dep.gate_change_id, "mode": dep.gate_mode, "decided_at": dep.gate_decided_at,
    })


def public(dep: Any) -> DeploymentPublic:
    """The deployment as the API returns it (and as its events carry it). ``dep`` is a row, or
    the plain record a create inserts with one Core statement."""
    return DeploymentPublic.model_validate({
        "id": dep.id, "number": dep.number, "service": dep.service,
        "environment": dep.environment, "software_version": dep.software_version,
        "artifact": dep.artifact, "ref": dep.ref, "commits": dep.commits,
        "pipeline": dep.pipeline, "triggered_by": dep.triggered_by, "change_id": dep.change_id,
        "status": dep.status, "gate": gate_public(dep), "rework": dep.rework,
        "fixes": dep.fixes, "external_id": dep.external_id,
        "summary": dep.summary, "links": dep.links,
        "recovery": {"kind": dep.recovery, "deployment_id": dep.recovers_deployment_id,
                     "incident_id": dep.recovers_incident_id} if dep.recovery else None,
        "allowed_transitions": LIFECYCLE.allowed(dep.status), "started_at": dep.started_at,
        "finished_at": dep.finished_at, "version": dep.version, "created_at": dep.created_at,
        "updated_at": dep.updated_at,
    })


class DeploymentAggregate(Aggregate[Deployment, DeploymentPublic]):
    async def snapshot(self, session: AsyncSession, row: Deployment) -> DeploymentPublic:
        return public(row)


deployments = DeploymentAggregate(Deployment, name="deployment", service="deployments",
                                  number_prefix="DEP")
