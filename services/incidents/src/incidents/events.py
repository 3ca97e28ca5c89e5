"""The ``data`` of every event this service publishes, as pydantic models.

:data:`EVENT_DATA` maps each event type to its model; the service builds every event's data
through these models (see :func:`incidents.service.record`), so the documented schema and
the published events cannot drift apart.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from incidents.models import IncidentPublic, Note, Suspect


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    incident: IncidentPublic = Field(description="The incident after the change.")


class IncidentCreated(_Data):
    pass


class IncidentUpdated(_Data):
    changes: dict[str, tuple[Any, Any]] = Field(
        description="Each edited field with its old and new value.")


class IncidentTransitioned(_Data):
    from_: str = Field(alias="from", description="The status before the move.")
    to: str = Field(description="The status after the move.")
    reason: str = ""


class IncidentAnnotated(_Data):
    note: Note = Field(description="A note, a repeated monitor alert or a deployment fact.")


class SlaBreachFacts(BaseModel):
    kind: Literal["response", "resolution"]
    priority: int
    due_at: datetime
    detected_at: datetime


class IncidentSlaBreached(_Data):
    breach: SlaBreachFacts


class IncidentSuspectsFound(_Data):
    window_seconds: int
    suspects: list[Suspect] = Field(description="Newest first.")


class IncidentCauseConfirmed(_Data):
    deployment_id: uuid.UUID | None
    change_id: uuid.UUID | None
    priority: int


EVENT_DATA: dict[str, type[BaseModel]] = {
    "tandem.incident.created": IncidentCreated,
    "tandem.incident.updated": IncidentUpdated,
    "tandem.incident.transitioned": IncidentTransitioned,
    "tandem.incident.annotated": IncidentAnnotated,
    "tandem.incident.sla_breached": IncidentSlaBreached,
    "tandem.incident.suspects_found": IncidentSuspectsFound,
    "tandem.incident.cause_confirmed": IncidentCauseConfirmed,
}
