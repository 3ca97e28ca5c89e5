"""What the changes service knows of the catalog: its projections of services (tier, owner and
operations teams) and teams (members), read by approvals by ownership and by risk (fields per
docs/architecture.md). Never a call to the catalog: its events are enough."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import ServiceView, TeamView
from changes.rules.approvals import Ownership
from tandem.projection import Projection, Snapshot


class ServiceSnapshot(Snapshot):
    """The fields read of ``data.service``."""

    id: uuid.UUID
    name: str
    tier: int | None = None
    owner_team: str | None = None
    operations_team: str | None = None
    repository: str | None = None
    ci_environments: list[str] = Field(default_factory=list)


class TeamSnapshot(Snapshot):
    """The fields read of ``data.team``."""

    id: uuid.UUID
    name: str
    members: list[str] = Field(default_factory=list)


services_seen = Projection(ServiceView, ServiceSnapshot)
teams_seen = Projection(TeamView, TeamSnapshot)


async def tier_of(session: AsyncSession, service: str) -> int | None:
    """The service's tier as the catalog last said (None: none, or not known)."""
    return await session.scalar(select(ServiceView.tier).where(ServiceView.name == service)
                                .limit(1))


async def ownership_of(session: AsyncSession, services: Iterable[str], *,
                       dual_approval_tier: int) -> dict[str, Ownership]:
    """What the catalog said of each of ``services``; teams' members are read only for the
    services approved by ownership (of a tier the dual approval covers)."""
    names = sorted(set(services))
    rows = (await session.scalars(
        select(ServiceView).where(ServiceView.name.in_(names))  # type: ignore[attr-defined]
        .execution_options(populate_existing=True))).all() if names else []
    known = {row.name: row for row in rows}
    teams: set[str] = set()
    for row in rows:
        if row.owner_team and row.tier is not None and 1 <= row.tier <= dual_approval_tier:
            teams.update(t for t in (row.owner_team, row.operations_team) if t)
    members: dict[str, frozenset[str]] = {}
    if teams:
        for team in (await session.scalars(
                select(TeamView).where(TeamView.name.in_(sorted(teams)))  # type: ignore[attr-defined]
                .execution_options(populate_existing=True))).all():
            members[team.name] = frozenset(team.members or ())
    out = {}
    for name in names:
        row = known.get(name)
        if row is None:
            out[name] = Ownership(service=name)
            continue
        out[name] = Ownership(
            service=name, known=True, tier=row.tier, owner_team=row.owner_team,
            operations_team=row.operations_team,
            owner_members=members.get(row.owner_team or "", frozenset()),
            operations_members=members.get(row.operations_team or "", frozenset()))
    return out
