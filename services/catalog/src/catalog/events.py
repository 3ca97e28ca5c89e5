"""The ``data`` of every event the catalog publishes on ``tandem.catalog``, one
:class:`~tandem.aggregate.EventData` model per type (the class names its type).

:data:`EVENT_DATA` maps each event type to its model (the event docs read it); every event is
written through ``Aggregate.record`` with one of these, so the documented schema and the
published events cannot drift apart.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from catalog.schemas import RevocationPublic, ServicePublic, TeamPublic
from tandem.aggregate import EventData, event_catalog


class Discovery(BaseModel):
    """The event of another service that first named a service."""

    event_type: str
    event_id: str
    source: str


class ServiceCreated(EventData):
    event_type: ClassVar[str] = "tandem.service.created"
    service: ServicePublic
    discovered_from: Discovery | None = Field(
        default=None, description="Set when the service was registered by itself, first "
                                  "named by this event of another service.")


class ServiceUpdated(EventData):
    event_type: ClassVar[str] = "tandem.service.updated"
    service: ServicePublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class TeamCreated(EventData):
    event_type: ClassVar[str] = "tandem.team.created"
    team: TeamPublic


class TeamUpdated(EventData):
    event_type: ClassVar[str] = "tandem.team.updated"
    team: TeamPublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class RevocationCreated(EventData):
    """A token revoked: every service refuses its ``jti`` until ``expires_at``."""

    event_type: ClassVar[str] = "tandem.revocation.created"
    revocation: RevocationPublic


EVENT_DATA = event_catalog(ServiceCreated, ServiceUpdated, TeamCreated, TeamUpdated,
                           RevocationCreated)
