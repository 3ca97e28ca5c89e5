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
from tandem.inputs import Input, Moment, Patch, at_least_one_of, fields_of_moves
from tandem.pagination import Page
from tandem.vocabulary import NAME_PATTERN, Environment


class Source(StrEnum):
    """How an incident was opened."""

    manual = "manual"
    monitor = "monitor"
    deployment = "deployment"
    #: Brought in from history (``tandem import incidents``).
    imported = "import"


class IncidentCreate(Input):
    title: str = Field(
        description="A one-line summary of what is wrong.",
        examples=["Checkout returns 502 for card payments"],
        min_length=1, max_length=200)
    description: str = Field(
        description="What is known so far: symptoms, scope, first findings. Empty when unset.",
        examples=["Since 10:40 UTC about 30% of card payments fail with 502 at the gateway."],
        default="", max_length=10000)
    service: str = Field(
        description="The affected service's name, as the catalog knows it.",
        examples=["checkout"],
        min_length=1, max_length=100, pattern=NAME_PATTERN)
    environment: Environment = Field(
        description="The environment it happens in.",
        examples=["production"])
    impact: int = Field(
        description=("How widely it hurts: 1 high (many users or a whole service), 2 medium, 3 "
                     "low; with urgency it sets the priority."),
        examples=[1],
        ge=1, le=3)
    urgency: int = Field(
        description=("How soon it must be fixed: 1 high, 2 medium, 3 low; with impact it sets the "
                     "priority."),
        examples=[2],
        ge=1, le=3)
    assignment_group: str | None = Field(
        description="The team that works on it; null when none is assigned.",
        examples=["payments-oncall"],
        default=None, min_length=1, max_length=100)
    assignee: str | None = Field(
        description="The person who works on it (their user name); null when none is assigned.",
        examples=["alice"],
        default=None, min_length=1, max_length=255)


class IncidentUpdate(Input, Patch):
    """A PATCH: only the fields given change. ``priority`` and ``major`` need a manager."""

    never_null = ("title", "service", "environment", "impact", "urgency", "major")

    title: str | None = Field(
        description="A new one-line summary.",
        examples=["Checkout returns 502 for card payments"],
        default=None, min_length=1, max_length=200)
    description: str | None = Field(
        description="A new description.",
        examples=["Card payments fail at the gateway since checkout 1.4.0 went live."],
        default=None, max_length=10000)
    service: str | None = Field(
        description="Move the incident to another service (by its catalog name).",
        examples=["payments"],
        default=None, min_length=1, max_length=100,
        pattern=NAME_PATTERN)
    environment: Environment | None = Field(
        default=None,
        description="Move the incident to another environment.",
        examples=["production"])
    impact: int | None = Field(
        description="A new impact, 1 high to 3 low; the priority follows unless overridden.",
        examples=[1],
        default=None, ge=1, le=3)
    urgency: int | None = Field(
        description="A new urgency, 1 high to 3 low; the priority follows unless overridden.",
        examples=[1],
        default=None, ge=1, le=3)
    assignment_group: str | None = Field(
        description="Assign it to this team; null unassigns.",
        examples=["payments-oncall"],
        default=None, min_length=1, max_length=100)
    assignee: str | None = Field(
        description="Assign it to this person; null unassigns.",
        examples=["alice"],
        default=None, min_length=1, max_length=255)
    priority: int | None = Field(
        description=("A manager's override of the priority, 1 (P1, critical) to 5 (P5, planning); "
                     "null returns to the priority derived from impact and urgency."),
        examples=[1],
        default=None, ge=1, le=5)
    major: bool | None = Field(
        default=None,
        description=("A manager's declaration of a major incident; false withdraws the "
                     "declaration."),
        examples=[True])
    mitigated_at: Moment | None = Field(
        default=None, description="When service was restored (RFC 3339 with its offset); "
                                  "null clears it.", examples=["2026-03-01T10:42:00Z"])


class IncidentPublic(BaseModel):
    """An incident as the API returns it and every event carries it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(
        description="The incident's id.")
    number: str = Field(
        description="The incident's number, as people quote it (INC and seven digits).",
        examples=["INC0000042"])
    title: str = Field(
        description="A one-line summary of what is wrong.")
    description: str = Field(
        description="What is known: symptoms, scope, findings; empty when none was given.")
    service: str = Field(
        description="The affected service's name.",
        examples=["checkout"])
    environment: Environment = Field(
        description="The environment it happens in.")
    impact: int = Field(
        description="How widely it hurts: 1 high, 2 medium, 3 low.")
    urgency: int = Field(
        description="How soon it must be fixed: 1 high, 2 medium, 3 low.")
    priority: int = Field(
        description=("1 (P1, critical) to 5 (P5, planning): from impact and urgency by the "
                     "policy's matrix, unless a manager overrode it."))
    priority_overridden: bool = Field(
        description="Whether a manager set the priority instead of the matrix.")
    major: bool = Field(
        description="Whether it is a major incident: P1 or P2, or declared so by a manager.")
    major_declared: bool = Field(
        description="Whether a manager declared it major (whatever its priority).")
    status: Status = Field(
        description="Where it is in its lifecycle.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    assignment_group: str | None = Field(
        description="The team that works on it; null when none is assigned.")
    assignee: str | None = Field(
        description="The person who works on it; null when none is assigned.")
    on_hold_reason: OnHoldReason | None = Field(
        description="Why it waits, while on hold; null otherwise.")
    resolution_code: ResolutionCode | None = Field(
        description="How it was resolved; null until it is resolved.")
    resolution_notes: str | None = Field(
        description="What was done to resolve it; null until it is resolved.")
    reopen_count: int = Field(
        description="How many times it was reopened after being resolved.")
    source: Source = Field(
        description=("How it was opened: by a person (manual), by a monitor's alert, or by a "
                     "failed deployment."))
    dedup_key: str | None = Field(
        description=("The alert key a monitor's repeated alerts are folded under; null for an "
                     "incident not opened by a monitor."))
    alert_count: int = Field(
        description="How many monitor alerts were folded into it.")
    cause_deployment_id: uuid.UUID | None = Field(
        description="The deployment named as its cause; null when none is.")
    cause_change_id: uuid.UUID | None = Field(
        description="The change named as its cause; null when none is.")
    cause_status: Literal["declared", "confirmed"] | None = Field(
        description=("declared: a cause was named; confirmed: someone confirmed it; null when no "
                     "cause is named."))
    cause_confirmed_at: datetime | None = Field(
        description="When the cause was confirmed; null until it is.")
    cause_confirmed_by: str | None = Field(
        description="Who confirmed the cause; null until someone does.")
    reported_by: str = Field(
        description="Who opened it: a user name, or the monitor or pipeline that did.")
    reported_at: datetime = Field(
        description="When it was reported; the SLA clocks start here.")
    acknowledged_at: datetime | None = Field(
        description="When it was first acknowledged; null until then.")
    mitigated_at: datetime | None = Field(
        description="When service was restored (the impact ended); null until someone says so.")
    resolved_at: datetime | None = Field(
        description="When it was resolved; null until then (and again after a reopen).")
    closed_at: datetime | None = Field(
        description="When it was closed; null until then.")
    response_due_at: datetime | None = Field(
        description=("When the first acknowledgement is due by the SLA of its priority; null when "
                     "its priority has no response target."))
    resolution_due_at: datetime | None = Field(
        description=("When it must be resolved by the SLA of its priority, pauses included; null "
                     "when its priority has no resolution target."))
    response_breached_at: datetime | None = Field(
        description="When the response target was missed; null while it is met.")
    resolution_breached_at: datetime | None = Field(
        description="When the resolution target was missed; null while it is met.")
    resolution_paused_at: datetime | None = Field(
        default=None, description="Since when the resolution SLA is paused (resolved, or on "
                                  "hold awaiting the caller or a vendor); null while it runs.")
    resolution_paused_seconds: float = Field(
        default=0.0, description="Seconds the resolution SLA stood still in earlier pauses; "
                                 "resolution_due_at is already later by them.")
    external_id: str | None = Field(
        default=None, description="Its id where it came from (an imported record's), or null.")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When the record was created.")
    updated_at: datetime = Field(
        description="When the record last changed.")


IncidentsPage = Page[IncidentPublic]


class TransitionRequest(Input):
    """A move of an incident. A move to ``on_hold`` names why; a move to ``resolved`` gives the
    resolution code and notes; no other move takes those fields."""

    model_config = ConfigDict(json_schema_extra=fields_of_moves({
        "on_hold": ("on_hold_reason",),
        "resolved": ("resolution_code", "resolution_notes")}))

    to: Status = Field(
        examples=["acknowledged"],
        description="The state to move to.")
    reason: str = Field(default="", max_length=2000, description="Why, for the timeline.",
                        examples=["Paged the payments on-call"])
    on_hold_reason: OnHoldReason | None = Field(
        examples=["awaiting_vendor"],
        default=None, description="Why it waits (with a move to on_hold only).")
    resolution_code: ResolutionCode | None = Field(
        examples=["rolled_back"],
        default=None, description="How it was resolved (with a move to resolved only).")
    resolution_notes: str | None = Field(
        default=None, min_length=1, max_length=4000,
        description="What was done (with a move to resolved only).",
        examples=["Rolled back checkout 1.4.0; error rate back under 0.1%"])


class NoteCreate(Input):
    text: str = Field(
        description="The note, as people will read it in the timeline.",
        examples=["Rolled back to 1.3.9; watching the error rate."],
        min_length=1, max_length=10000)


class Note(BaseModel):
    id: uuid.UUID = Field(
        description="The note's id.")
    incident_id: uuid.UUID = Field(
        description="The incident it belongs to.")
    kind: Literal["note", "alert", "deployment"] = Field(
        description=("note: written by a person; alert: a monitor's alert folded in; deployment: "
                     "a deployment of the service while it was open."))
    text: str = Field(
        description="The note's text.")
    author: str = Field(
        description="Who wrote it: a user name, or the monitor or pipeline.")
    created_at: datetime = Field(
        description="When it was written.")
    details: dict[str, Any] | None = Field(
        default=None,
        description=("What a note carries beyond its text: an alert's payload, a deployment's "
                     "id and status, the incident an alert was noted for; null when nothing."))


class NotesPage(BaseModel):
    items: list[Note] = Field(
        description="The incident's notes, newest first.")


class TimelineEntry(BaseModel):
    id: uuid.UUID = Field(
        description="The event's id.")
    type: str = Field(
        description="The event's type, such as tandem.incident.acknowledged.")
    sequence: int = Field(
        description="Its position in the incident's history, from 1.")
    time: datetime = Field(
        description="When it happened.")
    actor: str = Field(
        description="Who did it.")
    data: dict[str, Any] = Field(
        description="What changed, as the event carries it.")


class Timeline(BaseModel):
    items: list[TimelineEntry] = Field(
        description="The incident's history, oldest first.")
    next_cursor: str | None = Field(
        description="Pass it as `cursor` for the next entries; null at the end.")


class SuspectChange(BaseModel):
    """The change a suspect deployment carried (named by the pipeline, or its gate's
    receipt)."""

    id: uuid.UUID = Field(
        description="The change's id.")
    number: str = Field(
        description="The change's number (CHG and seven digits).")
    type: str = Field(
        description="standard, normal or emergency.")
    title: str = Field(
        description="The change's title.")
    status: str = Field(
        description="The change's state.")


class Suspect(BaseModel):
    kind: Literal["deployment", "change"] = Field(
        description="Whether the suspect is a deployment or a change.")
    id: uuid.UUID = Field(
        description="The deployment's or change's id.")
    number: str = Field(
        description="Its number (DEP0000007, CHG0000012).")
    service: str = Field(
        description="The service it touched.")
    environment: str = Field(
        description="The environment it touched.")
    status: str = Field(
        description="Its state.")
    at: datetime = Field(
        description=("When the deployment went live (succeeded; else when it ran) or the change "
                     "was implemented; suspects are ordered by it, newest first."))
    version: str | None = Field(
        default=None,
        description="A deployment's software version; null for a change.")
    change_id: uuid.UUID | None = Field(
        default=None,
        description="The change a deployment carried; null when none.")
    change: SuspectChange | None = Field(
        default=None,
        description=("The change a deployment carried, attached (then not listed on its own); "
                     "null when none."))
    type: str | None = Field(
        default=None,
        description="A change's type (standard, normal, emergency); null for a deployment.")
    title: str | None = Field(
        default=None,
        description="A change's title; null for a deployment.")


class Suspects(BaseModel):
    incident_id: uuid.UUID = Field(
        description="The incident the suspects are for.")
    window_seconds: int = Field(
        description=("How far before the incident was reported suspects are looked for, in "
                     "seconds."))
    items: list[Suspect] = Field(
        description=("The service's production deployments that ran and changes implemented in "
                     "that window, newest first."))


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

    response_seconds: int | None = Field(
        description="Seconds from reported to acknowledged; null for no target.",
        examples=[900],
        default=None, ge=1, le=366 * 86400)
    resolution_seconds: int | None = Field(
        description="Seconds from reported to resolved; null for no target.",
        examples=[14400],
        default=None, ge=1, le=366 * 86400)


#: Three rows (impact 1..3) of three priorities (urgency 1..3), each 1 (P1) to 5.
Matrix = Annotated[list[Annotated[list[Annotated[int, Field(ge=1, le=5)]],
                                  Field(min_length=3, max_length=3)]],
                   Field(min_length=3, max_length=3,
                         examples=[[[1, 2, 3], [2, 3, 4], [3, 4, 5]]])]


class PolicyPublic(BaseModel):
    priority_matrix: Matrix = Field(
        description=("The priority of each impact (rows 1..3) and urgency (columns 1..3), 1 (P1) "
                     "to 5 (P5)."))
    sla_targets: dict[str, SlaTarget] = Field(
        description="The SLA targets by priority (`1` to `5`).")
    version: int = Field(
        description="The policy's version; each change adds one.")
    updated_at: datetime | None = Field(
        description="When it last changed; null while the defaults apply.")
    updated_by: str | None = Field(
        description="Who last changed it; null while the defaults apply.")


class PolicyUpdate(BaseModel):
    """A PATCH of the policy: the priority matrix, the SLA targets by priority, or both."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=at_least_one_of("priority_matrix",
                                                                "sla_targets"))

    priority_matrix: Matrix | None = Field(
        default=None, examples=[[[1, 2, 3], [2, 3, 4], [3, 4, 5]]],
        description=("A new matrix: three rows (impact 1..3) of three priorities (urgency 1..3), "
                     "each 1 (P1) to 5 (P5)."))
    sla_targets: dict[Literal["1", "2", "3", "4", "5"], SlaTarget] | None = Field(
        default=None,
        description="New SLA targets by priority (`1` to `5`); priorities not named keep theirs.",
        examples=[{"1": {"response_seconds": 900, "resolution_seconds": 14400}}])

    @model_validator(mode="after")
    def _valid(self) -> PolicyUpdate:
        if self.priority_matrix is None and self.sla_targets is None:
            raise ValueError("give priority_matrix, sla_targets or both")
        return self


class Metrics(BaseModel):
    service: str | None = Field(
        description="The service asked for (service=); null for all.")
    environment: Environment | None = Field(
        description="The environment asked for (environment=); null for all.")
    since: datetime | None = Field(
        description="Only incidents reported since this time (since=); null for all.")
    team: str | None = Field(default=None, description="The team asked for (team=).")
    services: list[str] | None = Field(
        default=None, description="With team=: the services it owns or runs, counted here.")
    mtta: DurationSummary = Field(
        description=("Mean time to acknowledge: from reported to first acknowledged, over the "
                     "acknowledged incidents."))
    mttr: DurationSummary = Field(
        description=("Mean time to resolve: from reported to resolved, over the resolved "
                     "incidents."))


# --- post-incident reviews --------------------------------------------------------------------


class ReviewTimelineEntry(BaseModel):
    """One thing that happened around the incident, in any service."""

    time: datetime = Field(
        description="When it happened.")
    kind: Literal["incident", "deployment", "change", "freeze"] = Field(
        description="What it is about: the incident, a deployment, a change or a freeze.")
    ref: str = Field(description="The number of the incident, deployment, change or freeze.")
    text: str = Field(
        description="What happened, in a sentence.")


class ReviewStage(BaseModel):
    """One stage of the failure's value stream (seconds)."""

    stage: str = Field(
        description=("The stage's name: response, mitigation, resolution or review (and, for the "
                     "delivery that failed, commit, approval, scheduled, deploy)."))
    label: str = Field(
        description="The stage's name as people read it.")
    holder: Literal["owner", "operations"] = Field(
        description=("Which of the service's teams holds the stage: owner (the developers) or "
                     "operations."))
    team: str | None = Field(
        description="The holding team's name; null when the catalog names none.")
    start: datetime = Field(
        description="When the stage started.")
    end: datetime = Field(
        description="When it ended.")
    wait_s: float = Field(
        description="Seconds of the stage spent waiting (nobody's move), such as on hold.")
    work_s: float = Field(
        description="Seconds of the stage spent working.")


class Factor(BaseModel):
    text: str = Field(
        description="The contributing factor, as written.")
    added_by: str = Field(
        description="Who added it.")
    added_at: datetime = Field(
        description="When it was added.")


class ActionPublic(BaseModel):
    id: uuid.UUID = Field(
        description="The action item's id.")
    number: str = Field(description="The review's number and the item's: PIR0000001-2.")
    review_id: uuid.UUID = Field(
        description="The review it belongs to.")
    title: str = Field(
        description="What is to be done, in a line.")
    team: str | None = Field(
        description="The team that does it; null when none is named.")
    change_id: uuid.UUID | None = Field(
        description="The change whose production deployment closes it; null when none.")
    change_number: str | None = Field(
        description="That change's number (CHG0000012); null when none.")
    status: Literal["open", "closed"] = Field(
        description="open, or closed (by hand, or by the deployment of its change).")
    created_by: str = Field(
        description="Who added it.")
    created_at: datetime = Field(
        description="When it was added.")
    closed_at: datetime | None = Field(
        description="When it was closed; null while open.")
    closed_by: str | None = Field(
        description=("Who closed it (a person, or the pipeline of the deployment); null while "
                     "open."))
    closed_by_deployment_id: uuid.UUID | None = Field(
        description="The deployment that closed it; null when closed by hand or open.")
    closed_by_deployment_number: str | None = Field(
        description="That deployment's number (DEP0000007); null when none.")


class ReviewPublic(BaseModel):
    id: uuid.UUID = Field(
        description="The review's id.")
    number: str = Field(
        description="The review's number (PIR and seven digits).",
        examples=["PIR0000001"])
    incident_id: uuid.UUID = Field(
        description="The incident reviewed.")
    incident_number: str = Field(
        description="Its number (INC0000042).")
    incident_title: str = Field(
        description="Its title.")
    service: str = Field(
        description="The incident's service.")
    priority: int = Field(
        description="The incident's priority, 1 (P1) to 5.")
    status: Literal["open", "in_progress", "completed"] = Field(
        description="open: not started; in_progress; completed.")
    owner_team: str | None = Field(description="The service's operations team: it owns the "
                                               "review.")
    participant_team: str | None = Field(description="The service's owner team (its "
                                                     "developers): it takes part.")
    due_at: datetime = Field(
        description=("When it is due to be completed (working days after the incident was "
                     "resolved)."))
    started_at: datetime | None = Field(
        description="When it moved to in_progress; null until then.")
    completed_at: datetime | None = Field(
        description="When it was completed; null until then.")
    breached_at: datetime | None = Field(
        description="When it passed its due time still open; null when it has not.")
    completed_on_time: bool | None = Field(
        description="Whether it was completed by its due time; null until completed.")
    timeline: list[ReviewTimelineEntry] = Field(
        description="What happened around the incident in every service, oldest first.")
    cause: dict[str, Any] = Field(
        description=("The cause the incident names: its status (unknown, declared, confirmed), "
                     "the deployment and change with their numbers, and who confirmed it."))
    stream: list[ReviewStage] = Field(
        description="The failure's stages with their wait and work times.")
    factors: list[Factor] = Field(
        description="The contributing factors written down.")
    actions: list[ActionPublic] = Field(
        description="The action items.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When the review was opened (when its incident was resolved).")
    updated_at: datetime = Field(
        description="When it last changed.")


ReviewsPage = Page[ReviewPublic]


class FactorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        description="A contributing factor, in a sentence or two.",
        examples=["The canary stage checked latency but not the payment error rate."],
        min_length=1, max_length=2000)


class ActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(
        description="What is to be done, in a line.",
        examples=["Add the payment error rate to the canary's checks"],
        min_length=1, max_length=200)
    team: str | None = Field(
        examples=["payments"],
        default=None, min_length=1, max_length=100,
        description="The team that does it (default: the review's "
                    "participant team, the developers).")
    change: str | None = Field(
        examples=["CHG0000031"],
        default=None, min_length=1, max_length=64,
        description="A change (id or number) whose deployment to "
                    "production closes the item.")


class ReviewTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["in_progress", "completed"] = Field(
        description="in_progress: the review has started; completed: it is done.",
        examples=["completed"])
    reason: str = Field(
        description="Why, for the timeline.",
        examples=["Reviewed with payments and platform-ops"],
        default="", max_length=2000)


class ActionTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["closed"] = Field(
        description="closed: the item is done.",
        examples=["closed"])
    reason: str = Field(
        description="Why, for the record.",
        examples=["Done by hand: alert added in Grafana"],
        default="", max_length=2000)


class ReviewMetrics(BaseModel):
    reviews: int = Field(
        description="How many reviews are counted (those of team=, opened since since=).")
    completed: int = Field(
        description="How many of them are completed.")
    completed_on_time: int = Field(
        description="How many were completed by their due time.")
    on_time_rate: float | None = Field(
        description="completed_on_time / completed, 0 to 1; null when none is completed.")
    open_past_due: int = Field(
        description="Reviews still open after their due time.")
    open_actions_by_team: dict[str, int] = Field(
        description="Open action items per team name ((no team) for items without one).")
    review_to_fix: DurationSummary = Field(
        description="From a review's start to each of its action items closed by a deployment.")
