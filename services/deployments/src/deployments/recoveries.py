"""Recovery from a failed deploy, loaded: the service's recent finished deployments and the
incident a fix forward names, handed to the pure rule (:mod:`deployments.rules.recovery`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from deployments.models import Deployment, IncidentView
from deployments.rules.gate import OPEN_INCIDENT_STATUSES, IncidentFacts
from deployments.rules.recovery import PastDeployment, Recovery, recovery_of
from tandem.db import Prepared
from tandem.errors import Invalid

#: How far back a rollback looks for the last version that succeeded.
HISTORY = 50

_deployment = Deployment.__table__  # type: ignore[attr-defined]
#: The service's recent finished deployments, newest first.
_HISTORY_QUERY = Prepared(
    select(_deployment.c.id, _deployment.c.software_version, _deployment.c.status)
    .where(_deployment.c.service == bindparam("service"),
           _deployment.c.environment == bindparam("environment"),
           _deployment.c.status.in_(("succeeded", "failed", "rolled_back")))
    .order_by(_deployment.c.finished_at.desc(), _deployment.c.id.desc())
    .limit(HISTORY))


async def _fixed_incident(session: AsyncSession, number: str, service: str,
                          open_incidents: Sequence[IncidentFacts]) -> IncidentFacts:
    """The open production incident of ``service`` called ``number`` (422 naming ``fixes``
    otherwise)."""
    found = next((i for i in open_incidents if i.number == number), None)
    if found is not None:
        return found
    seen = (await session.scalars(select(IncidentView).where(
        IncidentView.number == number))).first()
    if seen is None:
        why = "is not known to the deployments service (yet)"
    elif seen.service != service:
        why = f"is an incident of {seen.service}, not {service}"
    elif seen.environment != "production":
        why = f"is a {seen.environment} incident; only a production incident is fixed forward"
    elif seen.status not in OPEN_INCIDENT_STATUSES:
        why = f"is {seen.status}, not open"
    else:  # pragma: no cover - open production incidents of the service are all given
        why = "is not open"
    raise Invalid("fixes", f"incident {number} {why}",
                  detail=f"The deployment cannot fix {number}: it {why}.")


async def recovery_for(session: AsyncSession, *, service: str, environment: str,
                       software_version: str, fixes: str | None,
                       open_incidents: Sequence[IncidentFacts]) -> Recovery | None:
    """The recovery a production deployment being recorded is (rollback or fix forward), or
    None; ``open_incidents`` are the service's open production incidents."""
    if environment != "production":
        if fixes is not None:
            raise Invalid("fixes", "only a production deployment fixes an incident forward",
                          detail="fixes is for production deployments: the incident it names "
                                 "is a production incident.")
        return None
    named = (await _fixed_incident(session, fixes, service, open_incidents)
             if fixes is not None else None)
    # Prepared once: on every production create, the ORM's statement handling cost several
    # times the query.
    rows = await _HISTORY_QUERY.run(session, {"service": service, "environment": environment})
    history = [PastDeployment(id=r.id, software_version=r.software_version, status=r.status)
               for r in rows]
    return recovery_of(software_version=software_version, history=history,
                       open_incidents=open_incidents, fixes=named)
