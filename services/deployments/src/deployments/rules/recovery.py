"""Recovery from a failed deploy, as plain data: whether a production deployment being
recorded is a rollback (a redeploy of the last version that succeeded in the environment, after
a failure) or a fix forward (it names the failure's incident), and which incidents' freezes it
passes.

Only an incident caused by a deployment is recovered this way: its freeze exists because the
service broke itself, and the recovery is the fix that freeze waits for. A freeze of any other
incident (a monitor's, a person's) still holds every deploy but an emergency change linked to it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from deployments.rules.gate import IncidentFacts

#: Finished states a deployment of the history can have (newest first in the history).
FAILED_STATES = frozenset({"failed", "rolled_back"})


@dataclass(frozen=True)
class PastDeployment:
    """A finished deployment of the same service and environment."""

    id: uuid.UUID
    software_version: str
    status: str


@dataclass(frozen=True)
class Recovery:
    """How a deployment recovers, and what from."""

    kind: str  # rollback | fix_forward
    #: The failed deployment it recovers from, if known.
    deployment_id: uuid.UUID | None
    #: The incident it recovers from (linked to its emergency change), if known.
    incident_id: uuid.UUID | None
    #: Open incidents caused by a deployment whose freezes it passes.
    incidents: tuple[IncidentFacts, ...] = ()


def last_good_and_failures(history: Sequence[PastDeployment], caused: set[uuid.UUID],
                           ) -> tuple[PastDeployment | None, list[PastDeployment]]:
    """Walking back from the newest: the failures (failed, rolled back, or named the cause of
    an open incident) since the last deployment that succeeded, and that deployment."""
    failures = []
    for past in history:
        if past.status in FAILED_STATES or past.id in caused:
            failures.append(past)
        elif past.status == "succeeded":
            return past, failures
    return None, failures


def recovery_of(*, software_version: str, history: Sequence[PastDeployment],
                open_incidents: Sequence[IncidentFacts],
                fixes: IncidentFacts | None) -> Recovery | None:
    """The recovery a deployment of ``software_version`` is, given the service's finished
    deployments (newest first), its open production incidents and the incident it names."""
    if fixes is not None:
        caused = (fixes,) if fixes.cause_deployment_id is not None else ()
        return Recovery("fix_forward", fixes.cause_deployment_id, fixes.id, caused)
    causes = {i.cause_deployment_id for i in open_incidents if i.cause_deployment_id}
    good, failures = last_good_and_failures(history, causes)  # type: ignore[arg-type]
    if good is None or not failures or good.software_version != software_version:
        return None
    failed_ids = {f.id for f in failures}
    recovered = tuple(i for i in open_incidents if i.cause_deployment_id in failed_ids)
    return Recovery("rollback", failures[0].id, recovered[0].id if recovered else None,
                    recovered)
