"""The ``data`` of every event this service publishes, one :class:`~tandem.aggregate.EventData`
model per type (the class names its type).

:data:`EVENT_DATA` maps each event type to its model (the event docs read it); every event is
written through ``incidents.record`` with one of these, so the documented schema and the
published events cannot drift apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from incidents.schemas import IncidentPublic, Note, Suspect
from tandem.aggregate import EventData, event_catalog


class _Data(EventData):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    incident: IncidentPublic = Field(description="The incident after the change.")


class IncidentCreated(_Data):
    event_type: ClassVar[str] = "tandem.incident.created"

    imported: bool = Field(
        default=False, description="History (``tandem import incidents``): counted in the "
                                   "metrics at its own times; nothing reacts to it as to a live "
                                   "incident (no freeze, no notification).")


class IncidentUpdated(_Data):
    event_type: ClassVar[str] = "tandem.incident.updated"

    changes: dict[str, tuple[Any, Any]] = Field(
        description="Each edited field with its old and new value.")


class IncidentTransitioned(_Data):
    event_type: ClassVar[str] = "tandem.incident.transitioned"

    from_: str = Field(alias="from", description="The status before the move.")
    to: str = Field(description="The status after the move.")
    reason: str = ""


class IncidentAnnotated(_Data):
    event_type: ClassVar[str] = "tandem.incident.annotated"

    note: Note = Field(description="A note, a repeated monitor alert or a deployment fact.")


class SlaBreachFacts(BaseModel):
    kind: Literal["response", "resolution"]
    priority: int
    due_at: datetime
    detected_at: datetime


class IncidentSlaBreached(_Data):
    event_type: ClassVar[str] = "tandem.incident.sla_breached"

    breach: SlaBreachFacts


class IncidentSuspectsFound(_Data):
    event_type: ClassVar[str] = "tandem.incident.suspects_found"

    window_seconds: int
    suspects: list[Suspect] = Field(description="Newest first.")


class IncidentCauseConfirmed(_Data):
    event_type: ClassVar[str] = "tandem.incident.cause_confirmed"

    deployment_id: uuid.UUID | None
    change_id: uuid.UUID | None
    priority: int


EVENT_DATA = event_catalog(
    IncidentCreated, IncidentUpdated, IncidentTransitioned, IncidentAnnotated,
    IncidentSlaBreached, IncidentSuspectsFound, IncidentCauseConfirmed,
)
