"""The cause of an incident: declared when S2 opens it for a failed deployment, confirmed by a
manager (``cause_confirmed`` tells deployments and changes, which count it as a failed
change)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events
from incidents.errors import IncidentFinal
from incidents.incident import incidents, public
from incidents.models import Incident
from incidents.projections import deployments_seen
from incidents.schemas import IncidentPublic
from tandem.db import utcnow


async def confirm_cause(session: AsyncSession, incident: Incident, *,
                        deployment_id: uuid.UUID | None, change_id: uuid.UUID | None,
                        actor: str) -> IncidentPublic:
    """A manager confirms the cause of ``incident`` (read for update); a deployment's change
    is filled from the projection. Confirming the same cause again changes nothing."""
    if incident.status == "canceled":
        raise IncidentFinal("A canceled incident has no cause to confirm.")
    if deployment_id is not None and change_id is None:
        known = await deployments_seen.get(session, deployment_id)
        change_id = known.change_id if known is not None else None
    if (incident.cause_status == "confirmed" and incident.cause_deployment_id == deployment_id
            and incident.cause_change_id == change_id):
        return public(incident)
    now = utcnow()
    incident.cause_deployment_id, incident.cause_change_id = deployment_id, change_id
    incident.cause_status = "confirmed"
    incident.cause_confirmed_at, incident.cause_confirmed_by = now, actor
    return await incidents.record(session, incident, events.IncidentCauseConfirmed, actor=actor,
                                  now=now, deployment_id=deployment_id, change_id=change_id,
                                  priority=incident.priority)
