"""Reactions to the incidents, deployments and catalog topics, one named handler per event
type.

Each handler gets the consumer's session (one transaction per batch, with the inbox), the
event and the service's settings; every change or freeze it writes is read under the write lock
(``tandem.aggregate``). Fields read of other services' snapshots: docs/architecture.md.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes import change_requests, freezes, standard_changes, success_scores
from changes.catalog import services_seen, teams_seen
from changes.change_requests import ChangeAggregate, apply_move, move_facts
from changes.config import ChangesSettings
from changes.conflicts import conflicts_of
from changes.events import ChangeUpdated
from changes.incidents import incidents_seen
from changes.models import Change
from changes.rules.freezes import incident_freezes_its_service, incident_is_open
from changes.rules.lifecycle import FINAL, move_refusal
from changes.rules.success_scores import cause_score
from changes.schemas import ChangeCreate
from tandem.app import Reaction, ReactionHandler
from tandem.db import utcnow
from tandem.events import CloudEvent
from tandem.projection import Snapshot

log = logging.getLogger("changes")


class DeploymentSnapshot(Snapshot):
    """The fields read of ``data.deployment``."""

    id: uuid.UUID
    number: str | None = None
    change_id: uuid.UUID | None = None
    status: str


class CauseConfirmed(Snapshot):
    """The facts of ``tandem.incident.cause_confirmed`` beside its snapshot."""

    change_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    priority: int | None = None


async def _change_for(session: AsyncSession, changes: ChangeAggregate, *,
                      change_id: uuid.UUID | None,
                      deployment_id: uuid.UUID | None) -> Change | None:
    """The change named by id, else the one a deployment asked for; locked for a write."""
    if (found := await changes.find(session, change_id, for_update=True)) is not None:
        return found
    if deployment_id is None:
        return None
    return (await session.scalars(changes.locked(
        select(Change).where(Change.deployment_id == deployment_id)))).first()


# --- incidents ----------------------------------------------------------------------------


async def incident_changed(session: AsyncSession, event: CloudEvent,
                           settings: ChangesSettings) -> None:
    """Keep the incident projection (risk) current, and S4: an open P1/P2 incident freezes its
    service (once per incident) until it is resolved, closed or canceled."""
    if not event.data.get("incident"):
        return
    incident = await incidents_seen.apply(session, event, derived={"updated_at": utcnow()})
    if event.data.get("imported") is True:
        return  # history: an incident of the past freezes nothing today
    freeze = await freezes.freeze_of_incident(session, incident.id)
    if freeze is None:
        if incident_freezes_its_service(incident.priority, incident.status):
            await freezes.freeze_for_incident(session, incident, actor=event.actor)
    elif not incident_is_open(incident.status) and freeze.status != "ended":
        await freezes.end(session, freeze, actor=event.actor,
                          reason=f"incident {incident.number or incident.id} {incident.status}")


async def cause_confirmed(session: AsyncSession, event: CloudEvent,
                          settings: ChangesSettings) -> None:
    """A confirmed cause marks the change (once per incident) and lowers its service's
    success score."""
    await incident_changed(session, event, settings)
    facts = CauseConfirmed.model_validate(event.data)
    changes = ChangeAggregate(settings)
    change = await _change_for(session, changes, change_id=facts.change_id,
                               deployment_id=facts.deployment_id)
    if change is None or event.subject in change.caused_incidents:
        return
    priority = facts.priority or (event.data.get("incident") or {}).get("priority")
    await success_scores.add_points(session, change.service, cause_score(priority), caused=1)
    before = list(change.caused_incidents)
    change.caused_incidents = [*before, event.subject]
    await changes.record(session, change, ChangeUpdated, actor=event.actor,
                         changes={"caused_incidents": [before, change.caused_incidents]})


# --- deployments --------------------------------------------------------------------------


async def deployment_transitioned(session: AsyncSession, event: CloudEvent,
                                  settings: ChangesSettings) -> None:
    """S5: the change follows its deployment (in_progress, succeeded, failed, rolled_back). A
    canceled deployment takes the change it carried with it: one it asked for is canceled
    before implementation, any carried change being implemented is canceled, and one already
    in review is closed unsuccessful; a scheduled change named by the pipeline stays scheduled
    (another deployment may carry it)."""
    deployment = DeploymentSnapshot.model_validate(event.data["deployment"])
    changes = ChangeAggregate(settings)
    change = await _change_for(session, changes, change_id=deployment.change_id,
                               deployment_id=deployment.id)
    if change is None:
        return
    to = event.data.get("to") or deployment.status
    reason = f"deployment {deployment.number or deployment.id} {to.replace('_', ' ')}"

    own = change.deployment_id == deployment.id

    async def step(target: str, close_code: str | None = None) -> bool:
        move, _ = await move_facts(session, changes, change, target, close_code=close_code,
                                   for_its_deployment=own)
        if (refusal := move_refusal(move)) is not None:
            # The deployment moved on regardless; the change stays where its rules hold it.
            log.info("change %s does not follow %s: %s", change.number, reason, refusal.detail)
            return False
        await apply_move(session, changes, change, target, reason=reason, actor=event.actor,
                         close_code=close_code,
                         close_notes=reason if close_code is not None else None,
                         for_its_deployment=own)
        return True

    if to == "in_progress" and change.status == "scheduled":
        await step("implement")
    elif to == "succeeded":
        if change.status == "scheduled" and not await step("implement"):
            return
        if change.status == "implement":
            await step("review")
    elif to == "canceled":
        if change.status == "implement" or (
                own and change.status in {"new", "assess", "authorize", "scheduled"}):
            # A change the deployment asked for has no purpose once that deployment is
            # canceled; an implementation that stopped with its deployment is over.
            await step("canceled")
        elif change.status == "review":
            await step("closed", close_code="unsuccessful")
    elif to in ("failed", "rolled_back"):
        if not change.marked_unsuccessful and change.status not in FINAL:
            change.marked_unsuccessful = True
            await changes.record(session, change, ChangeUpdated, actor=event.actor,
                                 changes={"marked_unsuccessful": [False, True]})
        # The implementation is over either way: it is ready to be reviewed and closed.
        if change.status == "implement":
            await step("review")


async def gate_decided(session: AsyncSession, event: CloudEvent,
                       settings: ChangesSettings) -> None:
    """S1: a gate asking for a change creates it once per deployment, linked to it: a standard
    one is recorded as scheduled (a receipt), a normal one waits in assess for approval, and an
    emergency one (a deployment recovering from the failed deploy that caused its incident) is
    linked to that incident and recorded as scheduled, authorized by that rule and reviewed
    after the fact, as ITIL's emergency changes are; its incident's freeze spares it."""
    request = event.data.get("change_request")
    if not request:
        return
    deployment_id = uuid.UUID(event.data["deployment"]["id"])
    if await session.scalar(select(Change.id).where(Change.deployment_id == deployment_id)):
        return
    body = ChangeCreate.model_validate({
        k: request.get(k) for k in ("type", "title", "description", "service", "environment",
                                    "planned_start", "planned_end", "incident_id")
        if request.get(k) is not None
    })
    template = (await standard_changes.active_template(session, body.service)
                if body.type == "standard" else None)
    if template is not None:
        # The receipt is recorded from the service's template, inside its longest window.
        end = body.planned_end
        if body.planned_start is not None:
            longest = body.planned_start + timedelta(minutes=template.max_window_minutes)
            end = min(end, longest) if end is not None else longest
        body = body.model_copy(update={
            "template_id": template.id, "planned_end": end,
            "description": (f"{body.description or ''} Recorded from standard change template "
                            f"{template.number}: {template.title}.").strip()[:10000]})
    change, _ = await change_requests.create(session, settings, body, actor=event.actor,
                                             deployment_id=deployment_id)
    changes = ChangeAggregate(settings)
    if change.type == "standard":
        # The gate already decided; a receipt records the conflicts it had without blocking.
        await apply_move(session, changes, change, "scheduled", actor=event.actor,
                         conflicts=await conflicts_of(session, change),
                         reason="change receipt for a deployment")
    elif change.type == "normal":
        await apply_move(session, changes, change, "assess", actor=event.actor,
                         reason="awaiting approval for a deployment")
    elif change.type == "emergency":
        number = event.data["deployment"].get("number") or deployment_id
        await apply_move(session, changes, change, "authorize", actor=event.actor,
                         reason=f"recovery deployment {number} of a failed deploy")
        await apply_move(session, changes, change, "scheduled", actor=event.actor,
                         conflicts=await conflicts_of(session, change),
                         reason=f"authorized by the recovery rule for deployment {number}: "
                                "a rollback or fix forward of the failed deploy that caused "
                                "its incident; reviewed after the fact")


# --- catalog --------------------------------------------------------------------------------


async def catalog_service_changed(session: AsyncSession, event: CloudEvent,
                                  settings: ChangesSettings) -> None:
    """The catalog wrote a service down or changed it: its tier and teams decide how its
    changes are approved (and their risk)."""
    await services_seen.apply(session, event, derived={"updated_at": utcnow()})


async def catalog_team_changed(session: AsyncSession, event: CloudEvent,
                               settings: ChangesSettings) -> None:
    """The catalog wrote a team down or changed its members: who may approve for it."""
    await teams_seen.apply(session, event, derived={"updated_at": utcnow()})


#: The consumer's handlers by event type.
HANDLERS: dict[str, ReactionHandler] = {
    **dict.fromkeys(("tandem.incident.created", "tandem.incident.updated",
                     "tandem.incident.transitioned", "tandem.incident.annotated",
                     "tandem.incident.sla_breached", "tandem.incident.suspects_found"),
                    incident_changed),
    "tandem.incident.cause_confirmed": cause_confirmed,
    "tandem.deployment.transitioned": deployment_transitioned,
    "tandem.deployment.gate_decided": gate_decided,
    "tandem.service.created": catalog_service_changed,
    "tandem.service.updated": catalog_service_changed,
    "tandem.team.created": catalog_team_changed,
    "tandem.team.updated": catalog_team_changed,
}

#: The service's one consumer of other topics.
REACTIONS = Reaction(topics=["incidents", "deployments", "catalog"], handlers=HANDLERS)
