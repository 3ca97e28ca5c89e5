"""The notifier API's shapes: request bodies (unknown fields refused), a subscription as every
answer and event carries it (never its secret), the first answer that shows the secret once,
and a delivery of the log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from notifier.rules.matching import SUBSCRIBABLE_TYPES, type_problem
from tandem.pagination import Page

Format = Literal["cloudevents", "slack"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


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
                           description="Where events are POSTed: https:// (http:// only where "
                                       "TANDEM_NOTIFIER_ALLOW_HTTP allows it).",
                           examples=["https://hooks.example.com/tandem"])]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubscriptionCreate(Input):
    url: Url
    format: Format = "cloudevents"
    description: str = Field(default="", max_length=10000)
    types: Types = Field(default_factory=list, description="Event types wanted "
                         "(tandem.incident.created, or tandem.incident.*); empty: every type.")
    services: Names = Field(default_factory=list, description="Only events about these "
                            "services; empty: every service.")
    teams: Names = Field(default_factory=list, description="Only events about services these "
                         "teams own or run (by the catalog); empty: every team.")
    min_priority: int | None = Field(default=None, ge=1, le=5, description="Only events "
                                     "carrying a priority at least this urgent (1 = P1).")


class SubscriptionUpdate(Input):
    """A PATCH: only the fields given change (``null`` clears ``min_priority``; on the other
    fields it changes nothing)."""

    url: Url | None = None
    format: Format | None = None
    description: str | None = Field(default=None, max_length=10000)
    types: Types | None = None
    services: Names | None = None
    teams: Names | None = None
    min_priority: int | None = Field(default=None, ge=1, le=5)


class SubscriptionTransition(Input):
    to: Literal["active", "disabled"]
    reason: str = Field(default="", max_length=500)


class SubscriptionPublic(BaseModel):
    """A subscription as the API returns it and its events carry it (no secret)."""

    id: uuid.UUID
    number: str
    url: str
    format: Format
    description: str
    types: list[str]
    services: list[str]
    teams: list[str]
    min_priority: int | None
    status: str
    disabled_reason: str | None
    source: str
    team: str | None
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class SubscriptionWithSecret(SubscriptionPublic):
    """The answer that creates a subscription: the signing secret, shown this once."""

    secret: str = Field(description="The Standard Webhooks signing secret (whsec_...); "
                                    "it is not shown again.")


class SubscriptionsPage(Page[SubscriptionPublic]):
    pass


class DeliveryPublic(BaseModel):
    """One event for one subscription, and how sending it went."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    subject: str
    sequence: int
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_latency_ms: float | None
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeliveriesPage(Page[DeliveryPublic]):
    pass
