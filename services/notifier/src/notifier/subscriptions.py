"""The notifier's subscriptions (aggregate ``subscription``, numbers ``SUB...``): their snapshot,
and creating, editing, enabling and disabling them, each write with its event in the caller's
transaction. A team's ``notify`` in the catalog is a subscription of its own
(``source: catalog``), kept in step with the team's events.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.config import NotifierSettings
from notifier.destinations import check_destination
from notifier.errors import DestinationRefused, ManagedByCatalog
from notifier.events import SubscriptionCreated, SubscriptionTransitioned, SubscriptionUpdated
from notifier.models import Subscription
from notifier.rules.lifecycle import SUBSCRIPTION_LIFECYCLE
from notifier.rules.signing import secret_from
from notifier.schemas import (
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)
from tandem.aggregate import Aggregate

_VOLATILE = ("version", "updated_at", "allowed_transitions")


def public(row: Subscription) -> SubscriptionPublic:
    """The subscription as the API returns it (and its events carry it): never the secret."""
    return SubscriptionPublic.model_validate({
        "id": row.id, "number": row.number, "url": row.url, "format": row.format,
        "description": row.description, "types": row.types or [],
        "services": row.services or [], "teams": row.teams or [],
        "min_priority": row.min_priority, "status": row.status,
        "disabled_reason": row.disabled_reason, "source": row.source, "team": row.team,
        "allowed_transitions": SUBSCRIPTION_LIFECYCLE.allowed(row.status),
        "version": row.version, "created_at": row.created_at, "updated_at": row.updated_at,
    })


def with_secret(row: Subscription) -> SubscriptionWithSecret:
    return SubscriptionWithSecret.model_validate({**public(row).model_dump(),
                                                  "secret": row.secret})


class SubscriptionAggregate(Aggregate[Subscription, SubscriptionPublic]):
    async def snapshot(self, session: AsyncSession, row: Subscription) -> SubscriptionPublic:
        return public(row)


subscriptions = SubscriptionAggregate(Subscription, name="subscription", service="notifier",
                                      number_prefix="SUB")


def new_secret() -> str:
    """A fresh signing secret (``whsec_`` and 24 random bytes in base64)."""
    return secret_from(secrets.token_bytes(24))


async def create_subscription(session: AsyncSession, body: SubscriptionCreate,
                              settings: NotifierSettings, *, actor: str,
                              source: str = "api", team: str | None = None,
                              ) -> tuple[Subscription, SubscriptionWithSecret]:
    """A subscription to ``body.url`` (checked by the destination guard), active, with a new
    secret; the answer shows the secret."""
    await check_destination(body.url, settings)
    row = await subscriptions.new(session, **body.model_dump(), status="active",
                                  source=source, team=team, secret=new_secret())
    await subscriptions.record(session, row, SubscriptionCreated, actor=actor)
    return row, with_secret(row)


def _compared(row: Subscription) -> dict[str, Any]:
    data = public(row).model_dump(mode="json")
    for volatile in _VOLATILE:
        data.pop(volatile)
    return data


async def change_fields(session: AsyncSession, row: Subscription, fields: dict[str, Any], *,
                        actor: str) -> SubscriptionPublic | None:
    """Set ``fields`` on ``row`` (read for update) and publish ``updated`` with
    ``{field: [old, new]}``; None when nothing changed (no event)."""
    before = _compared(row)
    for name, value in fields.items():
        setattr(row, name, value)
    after = _compared(row)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changes:
        return None
    return await subscriptions.record(session, row, SubscriptionUpdated, actor=actor,
                                      changes=changes)


async def edit_subscription(session: AsyncSession, row: Subscription, body: SubscriptionUpdate,
                            settings: NotifierSettings, *, actor: str) -> SubscriptionPublic:
    """Apply a PATCH to ``row`` (read for update); no change, no event."""
    if row.source == "catalog" and row.team is not None:
        raise ManagedByCatalog(row.number, row.team)
    fields = body.model_dump(exclude_unset=True)
    for name in ("url", "format", "description", "types", "services", "teams"):
        if name in fields and fields[name] is None:
            fields.pop(name)
    if "url" in fields:
        await check_destination(fields["url"], settings)
    return await change_fields(session, row, fields, actor=actor) or public(row)


async def move(session: AsyncSession, row: Subscription, to: str, *, actor: str, reason: str,
               automatic: bool = False) -> SubscriptionPublic:
    """Enable or disable ``row`` (read for update) with its ``transitioned`` event."""
    SUBSCRIPTION_LIFECYCLE.check(row.status, to)
    from_ = row.status
    row.status = to
    row.disabled_reason = (reason or "disabled") if to == "disabled" else None
    return await subscriptions.record(session, row, SubscriptionTransitioned, actor=actor,
                                      from_=from_, to=to, reason=reason, automatic=automatic)


async def disable(session: AsyncSession, subscription_id: Any, *, reason: str) -> bool:
    """The notifier disables a subscription by itself (a receiver gone, or failing too long);
    False when it is no longer active."""
    row = await subscriptions.find(session, subscription_id, for_update=True)
    if row is None or row.status != "active":
        return False
    await move(session, row, "disabled", actor="notifier", reason=reason, automatic=True)
    return True


async def team_subscription(session: AsyncSession, team: str, *,
                            for_update: bool = False) -> Subscription | None:
    stmt = select(Subscription).where(Subscription.source == "catalog",
                                      Subscription.team == team)
    if for_update:
        stmt = subscriptions.locked(stmt)
    return (await session.scalars(stmt)).first()


async def follow_team_notify(session: AsyncSession, team: str, notify: dict[str, Any] | None,
                             settings: NotifierSettings, *, actor: str) -> None:
    """Keep team ``team``'s subscription as its catalog ``notify`` says: created, moved to
    another URL or format, disabled when the team has none (or its URL is refused by the
    destination guard), enabled again when it has one."""
    row = await team_subscription(session, team, for_update=True)
    url = (notify or {}).get("url")
    fmt = (notify or {}).get("format") or "cloudevents"
    refused = None
    if url:
        try:
            await check_destination(url, settings, field="notify.url")
        except DestinationRefused as exc:
            refused = f"the team's notify URL is refused: {exc.detail}"
    if row is None:
        if not url or refused:
            return
        body = SubscriptionCreate(url=url, format=fmt, teams=[team],
                                  description=f"Team {team}'s notify (from the catalog)")
        await create_subscription(session, body, settings, actor=actor, source="catalog",
                                  team=team)
        return
    if url and not refused:
        changed = await change_fields(session, row, {"url": url, "format": fmt}, actor=actor)
        # Disabled by the notifier for a receiver gone or failing: enabled again only by a
        # new destination (or by a person), not by any edit of the team.
        if row.status == "disabled" and (changed is not None or (row.disabled_reason or "")
                                         .startswith("the team")):
            await move(session, row, "active", actor=actor, reason="the team's notify is set",
                       automatic=True)
    elif row.status == "active":
        await move(session, row, "disabled", actor=actor, automatic=True,
                   reason=refused or "the team has no notify in the catalog")
