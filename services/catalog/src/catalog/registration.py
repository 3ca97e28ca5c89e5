"""Services registered by themselves: a name first carried by another service's event enters
the catalog with no teams (``owner_team: null``), so an unowned service is visible, never lost.
Which names an event carries is the rule :func:`catalog.rules.registration.services_named`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.events import Discovery
from catalog.rules.registration import services_named
from catalog.schemas import ServicePublic
from catalog.services import register
from tandem.events import CloudEvent


async def register_named_services(session: AsyncSession,
                                  event: CloudEvent) -> list[ServicePublic]:
    """Register each service ``event`` names that the catalog lacks; returns those registered
    (the event's actor is theirs: their action first named the service)."""
    discovery = Discovery(event_type=event.type, event_id=str(event.id), source=event.source)
    registered = []
    for name in services_named(event.aggregate, event.data):
        snapshot = await register(session, name, actor=event.actor, discovered_from=discovery)
        if snapshot is not None:
            registered.append(snapshot)
    return registered
