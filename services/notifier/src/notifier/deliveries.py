"""The delivery log: an event's deliveries are queued in the consumer's transaction with its
inbox row (so an event is never lost between consuming it and sending it), one per active
subscription that wants it (:mod:`notifier.rules.matching`); a person asks for one again.
:mod:`notifier.courier` sends them."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.models import Delivery, ServiceView, Subscription
from notifier.rules.matching import SubscriptionFilter, event_facts, wants
from notifier.schemas import DeliveryPublic
from tandem.db import new_id, utcnow
from tandem.errors import NotFound
from tandem.events import CloudEvent

_delivery = Delivery.__table__  # type: ignore[attr-defined]


def public(row: Delivery) -> DeliveryPublic:
    return DeliveryPublic.model_validate(row, from_attributes=True)


def filter_of(row: Subscription) -> SubscriptionFilter:
    return SubscriptionFilter(types=tuple(row.types or ()), services=tuple(row.services or ()),
                              teams=tuple(row.teams or ()), min_priority=row.min_priority)


async def queue_deliveries(session: AsyncSession, event: CloudEvent) -> int:
    """Queue ``event`` for every active subscription that wants it (in the caller's
    transaction); returns how many."""
    subscribed = list((await session.scalars(
        select(Subscription).where(Subscription.status == "active"))).all())
    if not subscribed:
        return 0
    facts = event_facts(event.type, event.data)
    teams_of: dict[str, tuple[str | None, str | None]] = {}
    if facts.services and any(s.teams for s in subscribed):
        rows = await session.execute(
            select(ServiceView.name, ServiceView.owner_team, ServiceView.operations_team)
            .where(ServiceView.name.in_(sorted(facts.services))))  # type: ignore[attr-defined]
        teams_of = {name: (owner, ops) for name, owner, ops in rows.all()}
    wanted = [s for s in subscribed if wants(filter_of(s), facts, teams_of)]
    if not wanted:
        return 0
    body = orjson.loads(event.to_bytes())
    now = utcnow()
    await session.execute(insert(_delivery), [{
        "id": new_id(), "subscription_id": s.id, "event_id": event.id,
        "event_type": event.type, "subject": event.subject, "sequence": event.sequence,
        "event": body, "status": "pending", "attempts": 0, "queued_at": now,
        "next_attempt_at": now, "created_at": now, "updated_at": now,
    } for s in wanted])
    return len(wanted)


async def get_delivery(session: AsyncSession, ref: str, *, for_update: bool = False) -> Delivery:
    try:
        id_ = uuid.UUID(ref)
    except ValueError:
        raise NotFound("delivery", ref) from None
    stmt = select(Delivery).where(Delivery.id == id_)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = (await session.scalars(stmt)).first()
    if row is None:
        raise NotFound("delivery", ref)
    return row


async def redeliver(session: AsyncSession, row: Delivery) -> DeliveryPublic:
    """Send ``row`` (read for update) again as soon as its subscription's lane reaches it,
    with a fresh retry window; delivered before, it is sent again with the same
    ``webhook-id`` (a receiver that kept it can tell)."""
    now = utcnow()
    row.status = "pending"
    row.queued_at = now
    row.next_attempt_at = now
    row.delivered_at = None
    row.updated_at = now
    await session.flush()
    return public(row)


def as_json(row: Delivery) -> dict[str, Any]:
    return public(row).model_dump(mode="json")
