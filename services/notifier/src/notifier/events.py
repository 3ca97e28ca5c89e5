"""The ``data`` of every event the notifier publishes on ``tandem.notifier``, one
:class:`~tandem.aggregate.EventData` model per type (the class names its type).

:data:`EVENT_DATA` maps each event type to its model (the event docs read it). A subscription
disabled by the notifier itself (a receiver answering 410 Gone, or failing for days) is a
``transitioned`` event with ``automatic: true`` and the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from notifier.schemas import SubscriptionPublic
from tandem.aggregate import EventData, event_catalog


class SubscriptionCreated(EventData):
    event_type: ClassVar[str] = "tandem.subscription.created"
    subscription: SubscriptionPublic


class SubscriptionUpdated(EventData):
    event_type: ClassVar[str] = "tandem.subscription.updated"
    subscription: SubscriptionPublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class SubscriptionTransitioned(EventData):
    event_type: ClassVar[str] = "tandem.subscription.transitioned"
    subscription: SubscriptionPublic
    from_: str = Field(alias="from")
    to: str
    reason: str
    automatic: bool = Field(default=False, description="The notifier moved it by itself "
                            "(a receiver gone, or failing past the limit).")


EVENT_DATA = event_catalog(SubscriptionCreated, SubscriptionUpdated, SubscriptionTransitioned)
