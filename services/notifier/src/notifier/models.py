"""The notifier's tables: subscriptions (an aggregate), the delivery log, each subscription's
delivery lane, and its projection of the catalog's services. The API's shapes are in
:mod:`notifier.schemas`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field as Column

from tandem.aggregate import AggregateColumns
from tandem.db import JSONType, UTCDateTime, new_id, service_table_base, utcnow

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


class Subscription(ServiceTable, AggregateColumns, table=True):
    """Where facts go (aggregate ``subscription``, numbers ``SUB...``): a receiver's URL, the
    body's format, and which events it wants."""

    __table_args__ = (Index("ix_subscription_created_at", "created_at"),)

    url: str = Column(max_length=2000)
    #: ``cloudevents`` (the event itself) or ``slack`` (an incoming-webhook message).
    format: str = Column(max_length=16)
    description: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
    #: Event types wanted (``tandem.incident.created``, or ``tandem.incident.*``); empty: all.
    types: list[str] = Column(default_factory=list, sa_column=SAColumn(JSONType, nullable=False))
    services: list[str] = Column(default_factory=list,
                                 sa_column=SAColumn(JSONType, nullable=False))
    #: Teams whose services' events are wanted (owner or operations team, by the catalog).
    teams: list[str] = Column(default_factory=list, sa_column=SAColumn(JSONType, nullable=False))
    #: Only events carrying a priority at least this urgent (1 = P1) pass.
    min_priority: int | None = None
    #: ``active`` or ``disabled``.
    status: str = Column(max_length=16)
    disabled_reason: str | None = Column(default=None, max_length=500)
    #: ``api``, or ``catalog`` (a team's ``notify``; ``team`` names it).
    source: str = Column(max_length=16)
    team: str | None = Column(default=None, index=True, max_length=100)
    #: The Standard Webhooks signing secret (``whsec_...``); never in an answer but the first.
    secret: str = Column(max_length=100)


class Delivery(ServiceTable, table=True):
    """One event for one subscription: written with the consumer's inbox row, then sent until
    the receiver takes it (``delivered``) or its retry window ends (``failed``)."""

    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id", name="uq_delivery_subscription_event"),
        Index("ix_delivery_lane", "subscription_id", "status", "subject", "sequence"),
        # The courier's look for lanes with work: pending rows only, however long the log.
        Index("ix_delivery_status", "status", "subscription_id"),
        Index("ix_delivery_created_at", "created_at"),
    )

    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str = Column(max_length=100)
    subject: str = Column(max_length=64)
    #: The event's ``sequence``: a subject's deliveries go out in this order.
    sequence: int
    #: The event as consumed (the body is rendered from it at each attempt).
    event: dict[str, Any] = Column(sa_column=SAColumn(JSONType, nullable=False))
    #: ``pending``, ``delivered`` or ``failed``.
    status: str = Column(max_length=16)
    attempts: int = 0
    #: When its retry window began: queued, or asked to be delivered again.
    queued_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_latency_ms: float | None = None
    last_error: str | None = Column(default=None, max_length=500)
    delivered_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class DeliveryLane(ServiceTable, table=True):
    """A subscription's lane: which process sends its deliveries now (a lease, so replicas
    never send one subscription's events side by side) and since when it has been failing."""

    __tablename__ = "delivery_lane"

    subscription_id: uuid.UUID = Column(primary_key=True)
    holder: str | None = Column(default=None, max_length=100)
    lease_expires_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    #: The first failed attempt after the last success; null while the receiver answers.
    failing_since: datetime | None = Column(default=None, sa_type=UTCDateTime)
    last_success_at: datetime | None = Column(default=None, sa_type=UTCDateTime)


class ServiceView(ServiceTable, table=True):
    """The catalog's services as the notifier needs them: who owns and who runs each, for the
    ``teams`` filter."""

    __tablename__ = "service_view"

    id: uuid.UUID = Column(primary_key=True)
    name: str = Column(index=True, max_length=100)
    owner_team: str | None = Column(default=None, max_length=100)
    operations_team: str | None = Column(default=None, max_length=100)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
