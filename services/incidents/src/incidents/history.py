"""History in: ``POST /api/v1/imports/incidents``, a batch of past incidents (``tandem import
incidents FILE`` sends a file in batches, a PagerDuty incidents export among them), so MTTA,
MTTR and DORA's time to restore mean something on day one.

An imported incident is over: it has its resolved time (an open one is for the live paths:
a monitor's ``/v2/enqueue`` or a person). It is kept at its own reported, acknowledged and
resolved times, with no SLA due times (its SLA was someone else's to watch), and published as
one ``tandem.incident.created`` whose ``data.imported`` is true: the metrics count it, and
nothing reacts to it as to a live incident (the changes service freezes nothing for it, the
notifier tells nobody).

Idempotent by ``external_id`` (``import:<the record's id>``); a bad record is rejected with
its line and the rest of the batch imported.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from incidents import events
from incidents.incident import incidents
from incidents.models import Incident
from incidents.rules.lifecycle import ResolutionCode
from incidents.schemas import Environment, Source
from tandem.app import Session
from tandem.auth import Manager
from tandem.imports import (
    ImportSummary,
    import_batch,
    imported_id,
    not_yet_imported,
    validate_lines,
)
from tandem.numbers import next_numbers
from tandem.vocabulary import NAME_PATTERN

router = APIRouter(prefix="/api/v1/imports", tags=["history"])

#: An impact x urgency that gives each priority in the default matrix (when a record names its
#: priority only, as PagerDuty's does).
_PAIR_OF_PRIORITY = {1: (1, 1), 2: (1, 2), 3: (1, 3), 4: (2, 3), 5: (3, 3)}


class PastIncident(BaseModel):
    """One incident of the past, as a history file's line gives it."""

    model_config = ConfigDict(extra="ignore")

    external_id: str = Field(min_length=1, max_length=255)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    service: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    environment: Environment = Environment.production
    priority: int = Field(ge=1, le=5)
    major: bool | None = None
    reported_at: AwareDatetime
    acknowledged_at: AwareDatetime | None = None
    resolved_at: AwareDatetime
    closed_at: AwareDatetime | None = None
    resolution_code: ResolutionCode = ResolutionCode.solution_provided
    resolution_notes: str | None = Field(default=None, max_length=10000)
    assignment_group: str | None = Field(default=None, max_length=100)

    @model_validator(mode="after")
    def _ordered(self) -> PastIncident:
        if self.acknowledged_at is not None and self.acknowledged_at < self.reported_at:
            raise ValueError("acknowledged_at is before reported_at")
        if self.resolved_at < self.reported_at:
            raise ValueError("resolved_at is before reported_at")
        if self.closed_at is not None and self.closed_at < self.resolved_at:
            raise ValueError("closed_at is before resolved_at")
        return self


#: A record of the file, for the API's examples.
RECORD_EXAMPLE: dict[str, object] = {
    "external_id": "PD-Q2K7Z",
    "title": "Checkout 502s",
    "service": "checkout",
    "priority": 1,
    "reported_at": "2026-03-01T10:42:00Z",
    "resolved_at": "2026-03-01T11:30:00Z",
}


IncidentBatch = import_batch("past incident", RECORD_EXAMPLE)


@router.post("/incidents", response_model=ImportSummary)
async def import_incidents(batch: IncidentBatch, session: Session,
                           actor: Manager) -> ImportSummary:
    """Import past incidents (manager): ``imported``, ``skipped`` (already there) and
    ``rejected`` (each line and why); one transaction for the batch."""
    valid, rejected = validate_lines(batch, PastIncident)
    fresh = await not_yet_imported(session, Incident.external_id, valid)
    # One statement takes the batch's numbers, so nothing is flushed record by record.
    numbers = await next_numbers(session, incidents.number_prefix, len(fresh))
    for record, number in zip(fresh, numbers, strict=True):
        impact, urgency = _PAIR_OF_PRIORITY[record.priority]
        status = "closed" if record.closed_at is not None else "resolved"
        incident = Incident(
            number=number, version=0, created_at=record.reported_at,
            updated_at=record.reported_at, title=record.title,
            description=record.description, service=record.service,
            environment=record.environment.value, impact=impact, urgency=urgency,
            priority=record.priority, priority_overridden=False,
            major=record.major if record.major is not None else record.priority <= 2,
            major_declared=bool(record.major and record.priority > 2), status=status,
            assignment_group=record.assignment_group, resolution_code=record.resolution_code,
            resolution_notes=record.resolution_notes or f"Imported by {actor.sub}.",
            source=Source.imported.value, reported_by=actor.sub,
            reported_at=record.reported_at, acknowledged_at=record.acknowledged_at,
            resolved_at=record.resolved_at, closed_at=record.closed_at,
            resolution_paused_at=record.resolved_at,
            external_id=imported_id(record.external_id))
        session.add(incident)
        await incidents.record(session, incident, events.IncidentCreated, actor=actor.sub,
                               imported=True)
    return ImportSummary(imported=len(fresh), skipped=len(valid) - len(fresh), rejected=rejected)
