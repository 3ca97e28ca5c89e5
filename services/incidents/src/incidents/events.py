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

from incidents.schemas import ActionPublic, Factor, IncidentPublic, Note, ReviewPublic, Suspect
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


class _ReviewData(EventData):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    review: ReviewPublic = Field(description="The post-incident review after the change.")


class ReviewCreated(_ReviewData):
    """A resolved major incident got its review (timeline, cause and stream filled in)."""

    event_type: ClassVar[str] = "tandem.review.created"


class ReviewTransitioned(_ReviewData):
    event_type: ClassVar[str] = "tandem.review.transitioned"

    from_: str = Field(alias="from", description="The status before the move.")
    to: str = Field(description="The status after the move.")
    reason: str = ""


class ReviewFactorAdded(_ReviewData):
    event_type: ClassVar[str] = "tandem.review.factor_added"

    factor: Factor


class ReviewActionAdded(_ReviewData):
    event_type: ClassVar[str] = "tandem.review.action_added"

    action: ActionPublic


class ReviewActionClosed(_ReviewData):
    """An action item closed: by a person, or by itself when a production deployment
    carrying its change succeeded (``deployment_id`` set)."""

    event_type: ClassVar[str] = "tandem.review.action_closed"

    action: ActionPublic
    deployment_id: uuid.UUID | None = None


class ReviewTimelineUpdated(_ReviewData):
    """The review's timeline took in what was heard after it opened (the incident's freeze
    ending, or beginning late); ``review.timeline`` is the whole timeline now."""

    event_type: ClassVar[str] = "tandem.review.timeline_updated"


class ReviewDueBreached(_ReviewData):
    """The review was not completed by its due date (found by the periodic check)."""

    event_type: ClassVar[str] = "tandem.review.due_breached"

    due_at: datetime
    detected_at: datetime


EVENT_DATA = event_catalog(
    IncidentCreated, IncidentUpdated, IncidentTransitioned, IncidentAnnotated,
    IncidentSlaBreached, IncidentSuspectsFound, IncidentCauseConfirmed,
    ReviewCreated, ReviewTransitioned, ReviewFactorAdded, ReviewActionAdded,
    ReviewActionClosed, ReviewTimelineUpdated, ReviewDueBreached,
)
