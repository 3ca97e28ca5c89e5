"""The incidents API's shapes: request bodies (``Input``: unknown fields, NUL characters and
over-long text refused), the incident as every answer and event carries it, and the shapes of
notes, the timeline, suspects, the policy and the metrics."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from incidents.rules.lifecycle import OnHoldReason, ResolutionCode, Status
from incidents.rules.stats import DurationSummary
from tandem.inputs import Moment, Patch, at_least_one_of, fields_of_moves
from tandem.pagination import Page
from tandem.vocabulary import Environment

# Names: lower-case service names, as the other services use them.
SERVICE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class Source(StrEnum):
    """How an incident was opened."""

    manual = "manual"
    monitor = "monitor"
    deployment = "deployment"
    #: Brought in from history (``tandem import incidents``).
    imported = "import"


def has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in ``value`` (PostgreSQL text cannot hold one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


class Input(BaseModel):
    """A request body: unknown fields refused, text trimmed, NUL characters refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if has_nul(data):
            raise ValueError("text must not contain NUL characters")
        return data


class IncidentCreate(Input):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    service: str = Field(min_length=1, max_length=100, pattern=SERVICE_PATTERN)
    environment: Environment
    impact: int = Field(ge=1, le=3)
    urgency: int = Field(ge=1, le=3)
    assignment_group: str | None = Field(default=None, min_length=1, max_length=100)
    assignee: str | None = Field(default=None, min_length=1, max_length=255)


class IncidentUpdate(Input, Patch):
    """A PATCH: only the fields given change. ``priority`` and ``major`` need a manager."""

    never_null = ("title", "service", "environment", "impact", "urgency", "major")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    service: str | None = Field(default=None, min_length=1, max_length=100,
                                pattern=SERVICE_PATTERN)
    environment: Environment | None = None
    impact: int | None = Field(default=None, ge=1, le=3)
    urgency: int | None = Field(default=None, ge=1, le=3)
    assignment_group: str | None = Field(default=None, min_length=1, max_length=100)
    assignee: str | None = Field(default=None, min_length=1, max_length=255)
    #: A manager's override; null returns to the derived priority.
    priority: int | None = Field(default=None, ge=1, le=5)
    #: A manager's declaration of a major incident (false withdraws the declaration).
    major: bool | None = None
    mitigated_at: Moment | None = Field(
        default=None, description="When service was restored (RFC 3339 with its offset); "
                                  "null clears it.", examples=["2026-03-01T10:42:00Z"])


class IncidentPublic(BaseModel):
    """An incident as the API returns it and every event carries it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: str
    title: str
    description: str
    service: str
    environment: Environment
    impact: int
    urgency: int
    priority: int
    priority_overridden: bool
    major: bool
    major_declared: bool
    status: Status
    allowed_transitions: list[str]
    assignment_group: str | None
    assignee: str | None
    on_hold_reason: OnHoldReason | None
    resolution_code: ResolutionCode | None
    resolution_notes: str | None
    reopen_count: int
    source: Source
    dedup_key: str | None
    alert_count: int
    cause_deployment_id: uuid.UUID | None
    cause_change_id: uuid.UUID | None
    cause_status: Literal["declared", "confirmed"] | None
    cause_confirmed_at: datetime | None
    cause_confirmed_by: str | None
    reported_by: str
    reported_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    response_due_at: datetime | None
    resolution_due_at: datetime | None
    response_breached_at: datetime | None
    resolution_breached_at: datetime | None
    resolution_paused_at: datetime | None = Field(
        default=None, description="Since when the resolution SLA is paused (resolved, or on "
                                  "hold awaiting the caller or a vendor); null while it runs.")
    resolution_paused_seconds: float = Field(
        default=0.0, description="Seconds the resolution SLA stood still in earlier pauses; "
                                 "resolution_due_at is already later by them.")
    external_id: str | None = Field(
        default=None, description="Its id where it came from (an imported record's), or null.")
    version: int
    created_at: datetime
    updated_at: datetime


IncidentsPage = Page[IncidentPublic]


class TransitionRequest(Input):
    """A move of an incident. A move to ``on_hold`` names why; a move to ``resolved`` gives the
    resolution code and notes; no other move takes those fields."""

    model_config = ConfigDict(json_schema_extra=fields_of_moves({
        "on_hold": ("on_hold_reason",),
        "resolved": ("resolution_code", "resolution_notes")}))

    to: Status = Field(description="The state to move to.")
    reason: str = Field(default="", max_length=2000, description="Why, for the timeline.",
                        examples=["Paged the payments on-call"])
    on_hold_reason: OnHoldReason | None = Field(
        default=None, description="Why it waits (with a move to on_hold only).")
    resolution_code: ResolutionCode | None = Field(
        default=None, description="How it was resolved (with a move to resolved only).")
    resolution_notes: str | None = Field(
        default=None, min_length=1, max_length=4000,
        description="What was done (with a move to resolved only).",
        examples=["Rolled back checkout 1.4.0; error rate back under 0.1%"])


class NoteCreate(Input):
    text: str = Field(min_length=1, max_length=10000)


class Note(BaseModel):
    id: uuid.UUID
    incident_id: uuid.UUID
    kind: Literal["note", "alert", "deployment"]
    text: str
    author: str
    created_at: datetime
    details: dict[str, Any] | None = None


class NotesPage(BaseModel):
    items: list[Note]


class TimelineEntry(BaseModel):
    id: uuid.UUID
    type: str
    sequence: int
    time: datetime
    actor: str
    data: dict[str, Any]


class Timeline(BaseModel):
    items: list[TimelineEntry]
    next_cursor: str | None


class SuspectChange(BaseModel):
    """The change a suspect deployment carried (named by the pipeline, or its gate's
    receipt)."""

    id: uuid.UUID
    number: str
    type: str
    title: str
    status: str


class Suspect(BaseModel):
    kind: Literal["deployment", "change"]
    id: uuid.UUID
    number: str
    service: str
    environment: str
    status: str
    #: When the deployment went live (succeeded; else when it ran) or the change was
    #: implemented; suspects are ordered by it, newest first.
    at: datetime
    #: A deployment's software version (its snapshot's ``software_version``).
    version: str | None = None
    change_id: uuid.UUID | None = None
    #: A deployment's change, attached (the change is then not listed on its own).
    change: SuspectChange | None = None
    type: str | None = None
    title: str | None = None


class Suspects(BaseModel):
    incident_id: uuid.UUID
    window_seconds: int
    items: list[Suspect]


class CauseRequest(BaseModel):
    """The suspected cause of an incident: the deployment or the change (or both)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=at_least_one_of("deployment_id", "change_id"))

    deployment_id: uuid.UUID | None = Field(
        default=None, description="The deployment that caused it (its id).",
        examples=["0b5f2c8e-6a43-4f0e-9d4c-2f1e7a9b3c11"])
    change_id: uuid.UUID | None = Field(
        default=None, description="The change that caused it (its id).",
        examples=["7c1d9e4a-2b3f-4a5c-8d6e-9f0a1b2c3d4e"])

    @model_validator(mode="after")
    def _one_named(self) -> CauseRequest:
        if self.deployment_id is None and self.change_id is None:
            raise ValueError("name the cause: deployment_id or change_id")
        return self


class SlaTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: Seconds from reported to acknowledged; null = no target.
    response_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)
    #: Seconds from reported to resolved; null = no target.
    resolution_seconds: int | None = Field(default=None, ge=1, le=366 * 86400)


#: Three rows (impact 1..3) of three priorities (urgency 1..3), each 1 (P1) to 5.
Matrix = Annotated[list[Annotated[list[Annotated[int, Field(ge=1, le=5)]],
                                  Field(min_length=3, max_length=3)]],
                   Field(min_length=3, max_length=3,
                         examples=[[[1, 2, 3], [2, 3, 4], [3, 4, 5]]])]


class PolicyPublic(BaseModel):
    priority_matrix: Matrix
    sla_targets: dict[str, SlaTarget]
    version: int
    updated_at: datetime | None
    updated_by: str | None


class PolicyUpdate(BaseModel):
    """A PATCH of the policy: the priority matrix, the SLA targets by priority, or both."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=at_least_one_of("priority_matrix",
                                                                "sla_targets"))

    priority_matrix: Matrix | None = None
    sla_targets: dict[Literal["1", "2", "3", "4", "5"], SlaTarget] | None = None

    @model_validator(mode="after")
    def _valid(self) -> PolicyUpdate:
        if self.priority_matrix is None and self.sla_targets is None:
            raise ValueError("give priority_matrix, sla_targets or both")
        return self


class Metrics(BaseModel):
    service: str | None
    environment: Environment | None
    since: datetime | None
    team: str | None = Field(default=None, description="The team asked for (team=).")
    services: list[str] | None = Field(
        default=None, description="With team=: the services it owns or runs, counted here.")
    mtta: DurationSummary
    mttr: DurationSummary


# --- post-incident reviews --------------------------------------------------------------------


class ReviewTimelineEntry(BaseModel):
    """One thing that happened around the incident, in any service."""

    time: datetime
    kind: Literal["incident", "deployment", "change", "freeze"]
    ref: str = Field(description="The number of the incident, deployment, change or freeze.")
    text: str


class ReviewStage(BaseModel):
    """One stage of the failure's value stream (seconds)."""

    stage: str
    label: str
    holder: Literal["owner", "operations"]
    team: str | None
    start: datetime
    end: datetime
    wait_s: float
    work_s: float


class Factor(BaseModel):
    text: str
    added_by: str
    added_at: datetime


class ActionPublic(BaseModel):
    id: uuid.UUID
    number: str = Field(description="The review's number and the item's: PIR0000001-2.")
    review_id: uuid.UUID
    title: str
    team: str | None
    change_id: uuid.UUID | None
    change_number: str | None
    status: Literal["open", "closed"]
    created_by: str
    created_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    closed_by_deployment_id: uuid.UUID | None
    closed_by_deployment_number: str | None


class ReviewPublic(BaseModel):
    id: uuid.UUID
    number: str
    incident_id: uuid.UUID
    incident_number: str
    incident_title: str
    service: str
    priority: int
    status: Literal["open", "in_progress", "completed"]
    owner_team: str | None = Field(description="The service's operations team: it owns the "
                                               "review.")
    participant_team: str | None = Field(description="The service's owner team (its "
                                                     "developers): it takes part.")
    due_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    breached_at: datetime | None
    completed_on_time: bool | None
    timeline: list[ReviewTimelineEntry]
    cause: dict[str, Any]
    stream: list[ReviewStage]
    factors: list[Factor]
    actions: list[ActionPublic]
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


ReviewsPage = Page[ReviewPublic]


class FactorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=2000)


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    team: str | None = Field(default=None, min_length=1, max_length=100,
                             description="The team that does it (default: the review's "
                                         "participant team, the developers).")
    change: str | None = Field(default=None, min_length=1, max_length=64,
                               description="A change (id or number) whose deployment to "
                                           "production closes the item.")


class ReviewTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["in_progress", "completed"]
    reason: str = Field(default="", max_length=2000)


class ActionTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["closed"]
    reason: str = Field(default="", max_length=2000)


class ReviewMetrics(BaseModel):
    reviews: int
    completed: int
    completed_on_time: int
    on_time_rate: float | None
    open_past_due: int
    open_actions_by_team: dict[str, int]
    review_to_fix: DurationSummary = Field(
        description="From a review's start to each of its action items closed by a deployment.")
