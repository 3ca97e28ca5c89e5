"""Reactions to the other services' events: a service first named by any of them is
registered by itself (:mod:`catalog.registration`).

Each handler is a named function ``(session, event, settings)`` run in the consumer's
transaction with its inbox row; :data:`HANDLERS` registers them by event type. Nothing here
imports another service: events carry the fields docs/architecture.md lists.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from catalog.config import CatalogSettings
from catalog.registration import register_named_services
from tandem.app import Reaction, ReactionHandler
from tandem.events import CloudEvent

#: The event types of each aggregate of the other services, by aggregate.
OBSERVED = {
    "incident": ("created", "updated", "transitioned", "annotated", "sla_breached",
                 "suspects_found", "cause_confirmed"),
    "change": ("created", "updated", "transitioned", "approval_recorded"),
    "freeze": ("created", "transitioned"),
    "standard_change": ("created", "updated", "transitioned"),
    "deployment": ("created", "updated", "transitioned", "gate_decided"),
}


async def service_named(session: AsyncSession, event: CloudEvent,
                        settings: CatalogSettings) -> None:
    """Another service's event names a service: register it if the catalog lacks it."""
    await register_named_services(session, event)


HANDLERS: dict[str, ReactionHandler] = {
    f"tandem.{aggregate}.{verb}": service_named
    for aggregate, verbs in OBSERVED.items() for verb in verbs
}

#: The service's one consumer of other topics.
REACTIONS = Reaction(topics=["incidents", "changes", "deployments"], handlers=HANDLERS)
