"""Assignment by ownership: an incident opened with no assignment group (by a person, a
monitor or a failed deployment) gets its service's operations team from what the catalog
said (:mod:`incidents.projections`); the rule is :mod:`incidents.rules.assignment`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from incidents.projections import ServiceSnapshot, service_named
from incidents.rules.assignment import assignment_group


async def group_for(session: AsyncSession, service: str, given: str | None) -> str | None:
    """The assignment group of a new incident of ``service``: ``given``, else who the catalog
    says runs the service."""
    if given:
        return given
    known = await service_named(session, service)
    if known is None:
        return None
    return assignment_group(None, operations_team=known.operations_team,
                            owner_team=known.owner_team)


def group_of(service: ServiceSnapshot) -> str | None:
    """Who the catalog's latest word on ``service`` says runs it."""
    return assignment_group(None, operations_team=service.operations_team,
                            owner_team=service.owner_team)
