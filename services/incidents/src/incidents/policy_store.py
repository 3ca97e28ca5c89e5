"""The policy in force: the owner's stored edit of the priority matrix and SLA targets, else
the seed the settings give (``version`` 0). Its rules are in :mod:`incidents.rules.policy`."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.config import IncidentsSettings
from incidents.models import IncidentPolicy
from incidents.schemas import PolicyPublic, PolicyUpdate, SlaTarget
from tandem.db import utcnow


class Policy(BaseModel):
    """The priority matrix and SLA targets (priority -> response, resolution seconds)."""

    priority_matrix: list[list[int]]
    sla_targets: dict[int, tuple[int | None, int | None]]
    version: int
    updated_at: datetime | None
    updated_by: str | None

    def public(self) -> PolicyPublic:
        return PolicyPublic(
            priority_matrix=self.priority_matrix,
            sla_targets={str(p): SlaTarget(response_seconds=r, resolution_seconds=s)
                         for p, (r, s) in sorted(self.sla_targets.items())},
            version=self.version, updated_at=self.updated_at, updated_by=self.updated_by,
        )


#: The stored policy's one row (built once: every incident opened reads it).
_STORED = select(IncidentPolicy).where(IncidentPolicy.id == 1)
#: An edit is a read-modify-write checked against If-Match: the row is the writer's.
_STORED_FOR_UPDATE = _STORED.with_for_update().execution_options(populate_existing=True)


async def _stored(session: AsyncSession, *, for_update: bool = False) -> IncidentPolicy | None:
    return (await session.scalars(_STORED_FOR_UPDATE if for_update else _STORED)).first()


def _policy(row: IncidentPolicy | None, settings: IncidentsSettings) -> Policy:
    if row is None:
        return Policy(priority_matrix=settings.priority_matrix,
                      sla_targets=settings.sla_target_seconds(), version=0,
                      updated_at=None, updated_by=None)
    targets = {int(p): (v[0], v[1]) for p, v in row.sla_targets.items()}
    return Policy(priority_matrix=row.priority_matrix, sla_targets=targets, version=row.version,
                  updated_at=row.updated_at, updated_by=row.updated_by)


async def load_policy(session: AsyncSession, settings: IncidentsSettings, *,
                      for_update: bool = False) -> Policy:
    """The owner's stored policy, else the one the settings seed; ``for_update`` locks it for
    an edit."""
    return _policy(await _stored(session, for_update=for_update), settings)


async def update_policy(session: AsyncSession, settings: IncidentsSettings, current: Policy,
                        body: PolicyUpdate, *, actor: str) -> Policy:
    """Store the owner's edit over ``current`` (read with ``for_update``); applies to
    incidents created or re-prioritized from now on."""
    matrix = body.priority_matrix if body.priority_matrix is not None else current.priority_matrix
    targets = dict(current.sla_targets)
    for priority, target in (body.sla_targets or {}).items():
        targets[int(priority)] = (target.response_seconds, target.resolution_seconds)
    stored = {str(p): [r, s] for p, (r, s) in sorted(targets.items())}
    row = await session.get(IncidentPolicy, 1)
    now = utcnow()
    if row is None:
        # A first edit racing another inserts the same key: the loser's commit is a 409.
        row = IncidentPolicy(id=1, priority_matrix=matrix, sla_targets=stored, version=1,
                             updated_at=now, updated_by=actor)
        session.add(row)
    else:
        row.priority_matrix, row.sla_targets = matrix, stored
        row.version += 1
        row.updated_at, row.updated_by = now, actor
    await session.flush()
    return _policy(row, settings)
