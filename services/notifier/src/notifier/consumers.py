"""Reactions to every other service's events: each is queued for the subscriptions that want
it (:mod:`notifier.deliveries`); the catalog's also keep the notifier's view of who owns what
and each team's ``notify`` subscription.

Each handler is a named function ``(session, event, settings)`` run in the consumer's
transaction with its inbox row, so a delivery is queued exactly when its event is consumed.
Nothing here imports another service: events carry the fields docs/architecture.md lists.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from notifier.config import NotifierSettings
from notifier.deliveries import queue_deliveries
from notifier.projections import project_service, team_of
from notifier.rules.matching import KNOWN_TYPES
from notifier.subscriptions import follow_team_notify
from tandem.app import Reaction, ReactionHandler
from tandem.events import CloudEvent


async def fact_heard(session: AsyncSession, event: CloudEvent,
                     settings: NotifierSettings) -> None:
    """Any fact: queue it for the subscriptions that want it. History (``data.imported``:
    a record of the past brought in by ``tandem import``) is nobody's news: never sent."""
    if event.data.get("imported") is True:
        return
    await queue_deliveries(session, event)


async def service_written(session: AsyncSession, event: CloudEvent,
                          settings: NotifierSettings) -> None:
    """A catalog service: keep who owns and runs it (before matching its own event)."""
    await project_service(session, event)
    await queue_deliveries(session, event)


async def team_written(session: AsyncSession, event: CloudEvent,
                       settings: NotifierSettings) -> None:
    """A catalog team: its ``notify`` is its subscription."""
    team = team_of(event)
    await follow_team_notify(session, team.name, team.notify, settings, actor=event.actor)
    await queue_deliveries(session, event)


HANDLERS: dict[str, ReactionHandler] = dict.fromkeys(sorted(KNOWN_TYPES), fact_heard)
HANDLERS.update({
    "tandem.service.created": service_written,
    "tandem.service.updated": service_written,
    "tandem.team.created": team_written,
    "tandem.team.updated": team_written,
})

#: The service's one consumer: every topic but its own.
REACTIONS = Reaction(topics=["incidents", "changes", "deployments", "catalog"],
                     handlers=HANDLERS)
