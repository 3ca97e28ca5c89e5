"""The notifier API's shapes: request bodies (unknown fields refused), a subscription as every
answer and event carries it (never its secret), the first answer that shows the secret once,
and a delivery of the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from notifier.rules.matching import SUBSCRIBABLE_TYPES, type_problem
from tandem.inputs import Input
from tandem.pagination import Page
from tandem.vocabulary import NAME_PATTERN

Format = Literal["cloudevents", "slack"]
DeliveryStatus = Literal["pending", "delivered", "failed"]


def _event_type(value: str) -> str:
    if (why := type_problem(value)) is not None:
        raise ValueError(why)
    return value


def _unique(values: list[str]) -> list[str]:
    return sorted(set(values))


EventType = Annotated[str, Field(max_length=100, json_schema_extra={"enum": [*SUBSCRIBABLE_TYPES]}),
                      AfterValidator(_event_type)]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]
Types = Annotated[list[EventType], Field(max_length=50), AfterValidator(_unique)]
Names = Annotated[list[Name], Field(max_length=100), AfterValidator(_unique)]
Url = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^https?://[^\s/?#]+\S*$",
                           description="Where events are POSTed: an https:// address "
                                       "(http:// only where the operator allows it).",
                           examples=["https://hooks.example.com/tandem"])]


class SubscriptionCreate(Input):
    url: Url
    format: Format = Field(
        default="cloudevents",
        description=("cloudevents: each event POSTed as CloudEvents JSON, signed (Standard "
                     "Webhooks); slack: a Slack message for an incoming webhook."),
        examples=["cloudevents"])
    description: str = Field(
        description="What the receiver is, for people; empty when unset.",
        examples=["Payments on-call bot: P1 and P2 incidents"],
        default="", max_length=10000)
    types: Types = Field(
        examples=[["tandem.incident.*", "tandem.deployment.finished"]],
        default_factory=list, description="Event types wanted "
        "(tandem.incident.created, or tandem.incident.*); empty: every type.")
    services: Names = Field(
        examples=[["checkout", "payments"]],
        default_factory=list, description="Only events about these "
        "services; empty: every service.")
    teams: Names = Field(
        examples=[["payments"]],
        default_factory=list, description="Only events about services these "
        "teams own or run (by the catalog); empty: every team.")
    min_priority: int | None = Field(
        examples=[2],
        default=None, ge=1, le=5, description="Only events "
        "carrying a priority at least this urgent (1 = P1).")


class SubscriptionUpdate(Input):
    """A PATCH: only the fields given change (``null`` clears ``min_priority``; on the other
    fields it changes nothing)."""

    url: Url | None = Field(
        default=None,
        description="A new receiver address.",
        examples=["https://hooks.example.com/tandem"])
    format: Format | None = Field(
        default=None,
        description="cloudevents or slack.",
        examples=["slack"])
    description: str | None = Field(
        description="A new description.",
        examples=["Payments on-call bot: P1 incidents only"],
        default=None, max_length=10000)
    types: Types | None = Field(
        default=None,
        description="The event types wanted, replacing the list; empty: every type.",
        examples=[["tandem.incident.*"]])
    services: Names | None = Field(
        default=None,
        description="The services, replacing the list; empty: every service.",
        examples=[["payments"]])
    teams: Names | None = Field(
        default=None,
        description="The teams, replacing the list; empty: every team.",
        examples=[["payments"]])
    min_priority: int | None = Field(
        description=("Only events carrying a priority at least this urgent (1 = P1); null clears "
                     "it."),
        examples=[1],
        default=None, ge=1, le=5)


class SubscriptionTransition(Input):
    to: Literal["active", "disabled"] = Field(
        description="disabled: nothing more is queued for it; active: it receives events again.",
        examples=["disabled"])
    reason: str = Field(
        description="Why, kept with the subscription.",
        examples=["Receiver moved to a new address"],
        default="", max_length=500)


class SubscriptionPublic(BaseModel):
    """A subscription as the API returns it and its events carry it (no secret)."""

    id: uuid.UUID = Field(
        description="The subscription's id.")
    number: str = Field(
        description="The subscription's number (SUB and seven digits).",
        examples=["SUB0000005"])
    url: str = Field(
        description="Where events are POSTed.")
    format: Format = Field(
        description="cloudevents or slack.")
    description: str = Field(
        description="What the receiver is; empty when unset.")
    types: list[str] = Field(
        description="The event types wanted; empty: every type.")
    services: list[str] = Field(
        description="Only events about these services; empty: every service.")
    teams: list[str] = Field(
        description="Only events about services these teams own or run; empty: every team.")
    min_priority: int | None = Field(
        description="Only events with a priority at least this urgent (1 = P1); null: any.")
    status: str = Field(
        description="active: events are delivered; disabled: nothing is queued for it.")
    disabled_reason: str | None = Field(
        description=("Why it was disabled (a person's reason, or the receiver answered 410 "
                     "Gone); null while active."))
    source: str = Field(
        description=("api: made through the API; catalog: made from a team's notify address in "
                     "the catalog."))
    team: str | None = Field(
        description="The team whose catalog entry it follows; null for one made through the API.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it was made.")
    updated_at: datetime = Field(
        description="When it last changed.")


class SubscriptionWithSecret(SubscriptionPublic):
    """The answer that creates a subscription: the signing secret, shown this once."""

    secret: str = Field(description="The Standard Webhooks signing secret (whsec_...); "
                                    "it is not shown again.")


class SubscriptionsPage(Page[SubscriptionPublic]):
    pass


class DeliveryPublic(BaseModel):
    """One event for one subscription, and how sending it went."""

    id: uuid.UUID = Field(
        description="The delivery's id.")
    subscription_id: uuid.UUID = Field(
        description="The subscription it is for.")
    event_id: uuid.UUID = Field(
        description="The event delivered (its CloudEvents id).")
    event_type: str = Field(
        description="The event's type, such as tandem.incident.created.")
    subject: str = Field(
        description="The id of the aggregate the event is about; its events are sent in order.")
    sequence: int = Field(
        description="The event's position in its subject's history.")
    status: DeliveryStatus = Field(
        description=("pending: waiting to be sent or retried; delivered: the receiver answered "
                     "2xx; failed: given up (its retry window is over, or the receiver answered "
                     "410 Gone)."))
    attempts: int = Field(
        description="How many times sending it was tried.")
    last_status_code: int | None = Field(
        description=("The HTTP status the receiver last answered; null before an answer (none "
                     "yet, or no connection)."))
    last_latency_ms: float | None = Field(
        description="How long the last attempt took, in milliseconds; null before one.")
    last_error: str | None = Field(
        description="What went wrong the last time; null when nothing did.")
    last_attempt_at: datetime | None = Field(
        description="When it was last tried; null before the first try.")
    next_attempt_at: datetime | None = Field(
        description="When it is tried next; null when delivered or given up.")
    delivered_at: datetime | None = Field(
        description="When the receiver accepted it; null until then.")
    created_at: datetime = Field(
        description="When it was queued.")
    updated_at: datetime = Field(
        description="When it last changed.")


class DeliveriesPage(Page[DeliveryPublic]):
    pass
