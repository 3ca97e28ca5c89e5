"""The catalog's services (aggregate ``service``, numbers ``SVC...``): their snapshot, and
creating, editing and registering them, each write with its event in the caller's transaction.

A service is found by id, number or name (``/api/v1/services/payments``); every write reads it
with ``for_update=True`` (the locking policy). New names queue on the service number counter's
row, so two writers of one new name (an import, a registration) create it once.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from catalog.errors import ServiceExists, TeamUnknown
from catalog.events import Discovery, ServiceCreated, ServiceUpdated
from catalog.models import Service, Team
from catalog.schemas import ServiceCreate, ServicePublic, ServiceUpdate
from tandem.aggregate import Aggregate
from tandem.tables import NumberSequence

_NUMBER = re.compile(r"^SVC\d{7}$", re.IGNORECASE)
#: Fields that an edit compares (the snapshot's, less what every event moves).
_VOLATILE = ("version", "updated_at", "unowned")


def public(row: Service) -> ServicePublic:
    """The service as the API returns it (and its events carry it)."""
    return ServicePublic.model_validate({
        "id": row.id, "number": row.number, "name": row.name, "title": row.title,
        "description": row.description, "tier": row.tier, "lifecycle": row.lifecycle,
        "owner_team": row.owner_team, "operations_team": row.operations_team,
        "unowned": row.owner_team is None, "repository": row.repository,
        "ci_environments": row.ci_environments or [], "system": row.system,
        "runbook_url": row.runbook_url, "links": row.links or [], "on_call": row.on_call,
        "source": row.source, "version": row.version, "created_at": row.created_at,
        "updated_at": row.updated_at,
    })


class ServiceAggregate(Aggregate[Service, ServicePublic]):
    """Services on the core; a reference is an id, a number (``SVC0000001``) or a name."""

    def ref_clause(self, ref: str) -> Any:
        try:
            return Service.id == uuid.UUID(ref)
        except ValueError:
            pass
        if _NUMBER.match(ref):
            return Service.number == ref.upper()
        return Service.name == ref

    async def snapshot(self, session: AsyncSession, row: Service) -> ServicePublic:
        return public(row)


catalog_services = ServiceAggregate(Service, name="service", service="catalog",
                                    number_prefix="SVC")


async def queue_for_new_names(session: AsyncSession, *prefixes: str) -> None:
    """Take the number counters' row locks (SQLite: the write lock): writers that may create a
    service or team of a new name go one at a time, so each name is created once."""
    await session.execute(update(NumberSequence)
                          .where(NumberSequence.prefix.in_(prefixes))  # type: ignore[attr-defined]
                          .values(last_value=NumberSequence.last_value))


async def service_named(session: AsyncSession, name: str, *,
                        for_update: bool = False) -> Service | None:
    """The service called ``name``, if the catalog has it."""
    stmt = select(Service).where(Service.name == name)
    if for_update:
        stmt = catalog_services.locked(stmt)
    return (await session.scalars(stmt)).first()


async def check_teams_exist(session: AsyncSession, fields: dict[str, Any]) -> None:
    """:class:`TeamUnknown` for an owner or operations team the catalog does not have."""
    named = {f: fields[f] for f in ("owner_team", "operations_team") if fields.get(f)}
    if not named:
        return
    known = set(await session.scalars(select(Team.name).where(
        Team.name.in_(set(named.values())))))  # type: ignore[attr-defined]
    for field, team in named.items():
        if team not in known:
            raise TeamUnknown(field, team)


async def create_service(session: AsyncSession, body: ServiceCreate, *,
                         actor: str) -> tuple[Service, ServicePublic]:
    """A service written down by a person; its teams must be in the catalog."""
    fields = body.model_dump(mode="json")
    await check_teams_exist(session, fields)
    await queue_for_new_names(session, catalog_services.number_prefix)
    if (existing := await service_named(session, body.name)) is not None:
        raise ServiceExists(body.name, existing.number)
    row = await catalog_services.new(session, **fields, source="api")
    return row, await catalog_services.record(session, row, ServiceCreated, actor=actor)


def _compared(row: Service) -> dict[str, Any]:
    data = public(row).model_dump(mode="json")
    for volatile in _VOLATILE:
        data.pop(volatile)
    return data


async def change_fields(session: AsyncSession, row: Service, fields: dict[str, Any], *,
                        actor: str, source: str | None = None) -> ServicePublic | None:
    """Set ``fields`` (and ``source``) on ``row`` (read for update) and publish ``updated``
    with ``{field: [old, new]}``; None when nothing changed (no event)."""
    before = _compared(row)
    for name, value in fields.items():
        setattr(row, name, value)
    if source is not None:
        row.source = source
    after = _compared(row)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changes:
        return None
    return await catalog_services.record(session, row, ServiceUpdated, actor=actor,
                                         changes=changes)


async def edit_service(session: AsyncSession, row: Service, body: ServiceUpdate, *,
                       actor: str) -> ServicePublic:
    """Apply a PATCH to ``row`` (read for update); no change, no event."""
    fields = body.given()
    await check_teams_exist(session, fields)
    return await change_fields(session, row, fields, actor=actor) or public(row)


async def register(session: AsyncSession, name: str, *, actor: str,
                   discovered_from: Discovery) -> ServicePublic | None:
    """Register ``name`` by itself, with no teams, when the catalog does not have it yet (a
    service first named by another service's event); None when it has it."""
    if await service_named(session, name) is not None:
        return None
    await queue_for_new_names(session, catalog_services.number_prefix)
    if await service_named(session, name) is not None:  # registered while this one queued
        return None
    row = await catalog_services.new(session, name=name, description="", links=[],
                                     source="discovered")
    return await catalog_services.record(session, row, ServiceCreated, actor=actor,
                                         discovered_from=discovered_from)
