"""The catalog's teams (aggregate ``team``, numbers ``TEAM...``): their snapshot, and creating
and editing them, each write with its event in the caller's transaction.

A team is found by id, number or name; members are token ``sub``s, kept sorted and unique, so
an unchanged list is no change.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.errors import TeamExists
from catalog.events import TeamCreated, TeamUpdated
from catalog.models import Team
from catalog.schemas import TeamCreate, TeamPublic, TeamUpdate
from catalog.services import queue_for_new_names
from tandem.aggregate import Aggregate

_NUMBER = re.compile(r"^TEAM\d{7}$", re.IGNORECASE)
_VOLATILE = ("version", "updated_at")


def public(row: Team) -> TeamPublic:
    """The team as the API returns it (and its events carry it)."""
    return TeamPublic.model_validate({
        "id": row.id, "number": row.number, "name": row.name, "title": row.title,
        "description": row.description, "members": row.members or [], "notify": row.notify,
        "source": row.source, "version": row.version, "created_at": row.created_at,
        "updated_at": row.updated_at,
    })


def members_of(names: Iterable[str]) -> list[str]:
    """Members as a team keeps them: unique, sorted."""
    return sorted(set(names))


class TeamAggregate(Aggregate[Team, TeamPublic]):
    """Teams on the core; a reference is an id, a number (``TEAM0000001``) or a name."""

    def ref_clause(self, ref: str) -> Any:
        try:
            return Team.id == uuid.UUID(ref)
        except ValueError:
            pass
        if _NUMBER.match(ref):
            return Team.number == ref.upper()
        return Team.name == ref

    async def snapshot(self, session: AsyncSession, row: Team) -> TeamPublic:
        return public(row)


catalog_teams = TeamAggregate(Team, name="team", service="catalog", number_prefix="TEAM")


async def teams_named(session: AsyncSession, names: Iterable[str], *,
                      for_update: bool = False) -> dict[str, Team]:
    """The teams of ``names`` the catalog has, by name (locked, in name order, for a write)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    stmt = select(Team).where(Team.name.in_(wanted)).order_by(Team.name)  # type: ignore[attr-defined]
    if for_update:
        stmt = catalog_teams.locked(stmt)
    return {t.name: t for t in (await session.scalars(stmt)).all()}


async def new_team(session: AsyncSession, *, name: str, actor: str, source: str,
                   title: str | None = None, description: str = "",
                   members: Iterable[str] = (), notify: dict[str, Any] | None = None,
                   ) -> tuple[Team, TeamPublic]:
    """Create a team the caller made sure is new (queued for new names)."""
    row = await catalog_teams.new(session, name=name, title=title, description=description,
                                  members=members_of(members), notify=notify, source=source)
    return row, await catalog_teams.record(session, row, TeamCreated, actor=actor)


async def create_team(session: AsyncSession, body: TeamCreate, *,
                      actor: str) -> tuple[Team, TeamPublic]:
    """A team written down by a person."""
    await queue_for_new_names(session, catalog_teams.number_prefix)
    if (existing := (await teams_named(session, [body.name])).get(body.name)) is not None:
        raise TeamExists(body.name, existing.number)
    fields = body.model_dump(mode="json")
    return await new_team(session, actor=actor, source="api", **fields)


def _compared(row: Team) -> dict[str, Any]:
    data = public(row).model_dump(mode="json")
    for volatile in _VOLATILE:
        data.pop(volatile)
    return data


async def change_fields(session: AsyncSession, row: Team, fields: dict[str, Any], *,
                        actor: str, source: str | None = None) -> TeamPublic | None:
    """Set ``fields`` (and ``source``) on ``row`` (read for update) and publish ``updated``
    with ``{field: [old, new]}``; None when nothing changed (no event)."""
    before = _compared(row)
    for name, value in fields.items():
        setattr(row, name, members_of(value) if name == "members" else value)
    if source is not None:
        row.source = source
    after = _compared(row)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changes:
        return None
    return await catalog_teams.record(session, row, TeamUpdated, actor=actor, changes=changes)


async def edit_team(session: AsyncSession, row: Team, body: TeamUpdate, *,
                    actor: str) -> TeamPublic:
    """Apply a PATCH to ``row`` (read for update); no change, no event."""
    fields = body.given()
    return await change_fields(session, row, fields, actor=actor) or public(row)
