"""The notifier HTTP API: subscriptions and the delivery log. Reads need any token; writes are
a manager's (a subscription sends Tandem's facts out of it). Each write reads what it changes
under the locking policy and leaves the rules to the modules named after their nouns."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select
from starlette.background import BackgroundTask

from notifier.config import Settings
from notifier.deliveries import get_delivery, redeliver
from notifier.deliveries import public as delivery_public
from notifier.models import Delivery, Subscription
from notifier.schemas import (
    DeliveriesPage,
    DeliveryPublic,
    DeliveryStatus,
    SubscriptionCreate,
    SubscriptionPublic,
    SubscriptionsPage,
    SubscriptionTransition,
    SubscriptionUpdate,
    SubscriptionWithSecret,
)
from notifier.subscriptions import create_subscription, edit_subscription, move, subscriptions
from notifier.subscriptions import public as subscription_public
from tandem.app import Session
from tandem.auth import Manager, Reader
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import Cursor, Limit, page
from tandem.vocabulary import NAME_PATTERN

subscriptions_router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"])
deliveries_router = APIRouter(prefix="/api/v1/deliveries", tags=["deliveries"])

#: The ``{ref}`` of a subscription's path, and the ``{delivery_id}`` of a delivery's.
SubscriptionRef = Annotated[str, Path(
    description="The subscription's id or number (SUB0000005).", examples=["SUB0000005"])]
DeliveryId = Annotated[str, Path(description="The delivery's id.",
                                 examples=["2c4e6a8b-1d3f-4b5a-9c7e-8f0a2b4c6d8e"])]


def waking(request: Request, response: JSONBody) -> JSONBody:
    """``response``, waking the courier once it is sent (after the request's commit)."""
    response.background = BackgroundTask(request.app.state.courier.wake)
    return response


@subscriptions_router.post("", status_code=201, response_model=SubscriptionWithSecret)
async def add_subscription(body: SubscriptionCreate, request: Request, session: Session,
                           settings: Settings, actor: Manager, idem: Idempotency) -> JSONBody:
    """Subscribe a receiver; the answer shows the signing secret (``whsec_...``) this once."""
    if (replay := await idem.replay(session)) is not None:
        return replay
    row, shown = await create_subscription(session, body, settings, actor=actor.sub)
    return waking(request, await idem.respond(session, shown,
                                              location=f"/api/v1/subscriptions/{row.id}"))


@subscriptions_router.get("", response_model=SubscriptionsPage)
async def list_subscriptions(
    session: Session, _: Reader,
    status: Annotated[str | None, Query(
        pattern=r"^(active|disabled)$", description="Only active or only disabled ones.",
        examples=["active"])] = None,
    format: Annotated[str | None, Query(
        pattern=r"^(cloudevents|slack)$", description="Only those sending this format.",
        examples=["slack"])] = None,
    team: Annotated[str | None, Query(
        max_length=100, pattern=NAME_PATTERN,
        description="Only the subscription that follows this team's catalog entry.",
        examples=["payments"])] = None,
    source: Annotated[str | None, Query(
        pattern=r"^(api|catalog)$", description="Only those made this way: api, or catalog "
                                                "(from a team's notify address).",
        examples=["catalog"])] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> SubscriptionsPage:
    """Subscriptions, newest first; filters are the fields."""
    stmt = select(Subscription)
    for name, value in (("status", status), ("format", format), ("team", team),
                        ("source", source)):
        if value is not None:
            stmt = stmt.where(getattr(Subscription, name) == value)
    items, next_cursor = await page(session, stmt, Subscription, limit=limit, cursor=cursor)
    return SubscriptionsPage(items=[subscription_public(s) for s in items],
                             next_cursor=next_cursor)


@subscriptions_router.get("/{ref}", response_model=SubscriptionPublic)
async def get_subscription(ref: SubscriptionRef, session: Session, _: Reader) -> JSONBody:
    """A subscription by id or number (never its secret)."""
    return resource_response(subscription_public(await subscriptions.get(session, ref)))


@subscriptions_router.patch("/{ref}", response_model=SubscriptionPublic)
async def update_subscription(ref: SubscriptionRef, body: SubscriptionUpdate, request: Request,
                              session: Session, settings: Settings,
                              actor: Manager) -> JSONBody:
    """Edit a subscription (``If-Match`` honoured); a team's follows the catalog instead."""
    row = await subscriptions.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    return resource_response(await edit_subscription(session, row, body, settings,
                                                     actor=actor.sub))


@subscriptions_router.post("/{ref}/transitions", response_model=SubscriptionPublic)
async def transition_subscription(ref: SubscriptionRef, body: SubscriptionTransition,
                                  request: Request, session: Session,
                                  actor: Manager) -> JSONBody:
    """Disable a subscription (nothing more is queued for it) or enable it again (what was
    pending is sent, and its failing streak starts over)."""
    row = await subscriptions.get(session, ref, for_update=True)
    check_if_match(request, row.version)
    snapshot = await move(session, row, body.to, actor=actor.sub, reason=body.reason)
    return waking(request, resource_response(snapshot))


@deliveries_router.get("", response_model=DeliveriesPage, responses={
    404: {"description": "The subscription named by `subscription` does not exist."}})
async def list_deliveries(
    session: Session, _: Reader,
    subscription: Annotated[str | None, Query(max_length=64, description="Only deliveries "
                                              "for this subscription (its id or number).",
                                              examples=["SUB0000005"])] = None,
    status: Annotated[DeliveryStatus | None, Query(
        description="Only deliveries in this state.", examples=["failed"])] = None,
    event_type: Annotated[str | None, Query(
        max_length=100, description="Only deliveries of this event type.",
        examples=["tandem.incident.created"])] = None,
    event_id: Annotated[uuid.UUID | None, Query(
        description="Only the deliveries of this event (its CloudEvents id).",
        examples=["6e1f3a5c-7b9d-4e2f-8a1c-3d5e7f9b1a2c"])] = None,
    subject: Annotated[str | None, Query(
        max_length=64, description="Only deliveries of events about this aggregate (its id).",
        examples=["3f6c1a2e-8b4d-4e7f-9a1b-2c3d4e5f6a7b"])] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> DeliveriesPage:
    """The delivery log, newest first: status, attempts, last response code and latency,
    next attempt."""
    stmt = select(Delivery)
    if subscription is not None:
        row = await subscriptions.get(session, subscription)
        stmt = stmt.where(Delivery.subscription_id == row.id)
    for name, value in (("status", status), ("event_type", event_type),
                        ("event_id", event_id), ("subject", subject)):
        if value is not None:
            stmt = stmt.where(getattr(Delivery, name) == value)
    items, next_cursor = await page(session, stmt, Delivery, limit=limit, cursor=cursor)
    return DeliveriesPage(items=[delivery_public(d) for d in items], next_cursor=next_cursor)


@deliveries_router.get("/{delivery_id}", response_model=DeliveryPublic)
async def get_delivery_log(delivery_id: DeliveryId, session: Session, _: Reader) -> JSONBody:
    """One delivery and how sending it went."""
    return JSONBody(delivery_public(await get_delivery(session, delivery_id)))


@deliveries_router.post("/{delivery_id}/redeliver", status_code=202,
                        response_model=DeliveryPublic)
async def redeliver_delivery(delivery_id: DeliveryId, request: Request, session: Session,
                             _: Manager) -> JSONBody:
    """Send a delivery again (delivered or given up), with a fresh retry window; it goes out
    when its subscription's lane reaches it (in order with its subject's other events)."""
    row = await get_delivery(session, delivery_id, for_update=True)
    return waking(request, JSONBody(await redeliver(session, row), status_code=202))
