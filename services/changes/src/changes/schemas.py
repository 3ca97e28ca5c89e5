"""The API schemas: what clients send and what the changes service answers (and its events
carry)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from changes.rules.freezes import FREEZE_API_MOVES
from changes.rules.lifecycle import PATHS
from changes.rules.risk import Risk
from changes.rules.standard_changes import TEMPLATE_LIFECYCLE
from tandem.inputs import Moment, together
from tandem.pagination import Page
from tandem.transitions import TransitionRequest
from tandem.vocabulary import NAME_PATTERN, Environment


class ChangeType(StrEnum):
    standard = "standard"
    normal = "normal"
    emergency = "emergency"


class CloseCode(StrEnum):
    successful = "successful"
    successful_with_issues = "successful_with_issues"
    unsuccessful = "unsuccessful"


#: A client's time with its offset, kept in UTC.
UTCTime = Moment
ServiceName = Annotated[str, Field(min_length=1, max_length=100, pattern=NAME_PATTERN)]


class ChangeCreate(BaseModel):
    """A change request. A planned window gives both ends (or neither)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=together("planned_start", "planned_end"))

    type: ChangeType = Field(
        description=("standard: pre-authorized and repeatable (from a template); normal: assessed "
                     "and authorized; emergency: expedited, to fix an incident."),
        examples=["normal"])
    title: str | None = Field(
        examples=["Upgrade the payments database to PostgreSQL 16"],
        default=None, min_length=1, max_length=200,
        description="Required, unless a template gives it.")
    description: str | None = Field(
        description=("What will be done, how it is tested and how it is backed out; empty when "
                     "unset."),
        examples=["Blue-green switch of payments-db; rollback: switch back."],
        default=None, max_length=10000)
    service: str = Field(
        description="The service changed, by its catalog name.",
        examples=["payments"],
        min_length=1, max_length=100, pattern=NAME_PATTERN)
    environment: Environment = Field(
        description="The environment changed.",
        examples=["production"])
    planned_start: UTCTime | None = Field(
        default=None,
        description=("When the work is planned to start (RFC 3339 with its offset); give "
                     "planned_end with it, or neither."),
        examples=["2026-03-03T22:00:00Z"])
    planned_end: UTCTime | None = Field(
        default=None,
        description="When the work is planned to be done; after planned_start.",
        examples=["2026-03-03T23:00:00Z"])
    risk: Risk | None = Field(
        examples=["moderate"],
        default=None, description="A proposed risk: no lower than the rules' (a manager may "
                                  "lower it, with risk_reason).")
    risk_reason: str | None = Field(
        examples=["Rehearsed twice in staging; rollback takes two minutes"],
        default=None, min_length=1, max_length=2000,
        description="Why a manager lowers the risk below the "
                    "rules'.")
    incident_id: uuid.UUID | None = Field(
        default=None,
        description="The incident the change fixes (an emergency change's); null for none.",
        examples=["3f6c1a2e-8b4d-4e7f-9a1b-2c3d4e5f6a7b"])
    template_id: uuid.UUID | None = Field(
        examples=["9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"],
        default=None, description="The standard change template it is recorded from (a "
                                  "pre-authorized path); a pipeline's standard change needs one.")

    @model_validator(mode="after")
    def _titled(self) -> ChangeCreate:
        if self.title is None and self.template_id is None:
            raise ValueError("title is required (or a template_id that gives it)")
        return self


class ChangeUpdate(BaseModel):
    """A PATCH: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        description="A new title.",
        examples=["Upgrade the payments database to PostgreSQL 16.2"],
        default=None, min_length=1, max_length=200)
    description: str | None = Field(
        description="A new description.",
        examples=["Blue-green switch of payments-db at low traffic."],
        default=None, max_length=10000)
    planned_start: UTCTime | None = Field(
        default=None,
        description="A new planned start (RFC 3339 with its offset).",
        examples=["2026-03-03T22:00:00Z"])
    planned_end: UTCTime | None = Field(
        default=None,
        description="A new planned end; after the planned start.",
        examples=["2026-03-03T23:00:00Z"])
    risk: Risk | None = Field(
        default=None,
        description=("A new risk: no lower than the rules' unless a manager lowers it, with "
                     "risk_reason."),
        examples=["high"])
    risk_reason: str | None = Field(
        description="Why a manager lowers the risk below the rules'.",
        examples=["Rehearsed twice in staging; rollback takes two minutes"],
        default=None, min_length=1, max_length=2000)
    incident_id: uuid.UUID | None = Field(
        default=None,
        description="The incident the change fixes; null unlinks it.",
        examples=["3f6c1a2e-8b4d-4e7f-9a1b-2c3d4e5f6a7b"])


class ApprovalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID = Field(
        description="The decision's id.")
    approver: str = Field(
        description="Who decided.")
    decision: Literal["approve", "reject"] = Field(
        description="approve or reject.")
    comment: str = Field(
        description="The approver's comment; empty when none.")
    created_at: datetime = Field(
        description="When the decision was made.")


class ApprovalSidePublic(BaseModel):
    side: Literal["owner", "operations"] = Field(
        description="owner: the service's owner team; operations: the team that runs it.")
    team: str = Field(
        description="The team whose manager must approve.")
    approved_by: list[str] = Field(description="Managers of this team who approved.")


class ApprovalRulePublic(BaseModel):
    """How a change is approved (from what the catalog says of its service)."""

    kind: Literal["none", "managers", "ownership"] = Field(
        description="none: pre-authorized (standard); managers: any managers; ownership: a "
                    "manager of each side's team.")
    tier: int | None = Field(
        description="The service's tier in the catalog (1 most critical); null when unknown.")
    owner_team: str | None = Field(
        description="The service's owner team; null when the catalog names none.")
    operations_team: str | None = Field(
        description="The team that runs the service; null when the catalog names none.")
    unowned: bool = Field(description="The catalog has no owner team for the service.")
    sides: list[ApprovalSidePublic] = Field(
        description="The teams that must approve, under ownership.")
    missing: list[str] = Field(description="Teams whose manager's approval is still needed.")
    note: str | None = Field(
        description="Why this rule applies, in a sentence; null when nothing needs saying.")


class ChangePublic(BaseModel):
    id: uuid.UUID = Field(
        description="The change's id.")
    number: str = Field(
        description="The change's number, as people quote it (CHG and seven digits).",
        examples=["CHG0000012"])
    type: ChangeType = Field(
        description="standard, normal or emergency.")
    title: str = Field(
        description="What the change does, in a line.")
    description: str = Field(
        description="What will be done, how it is tested and backed out; empty when unset.")
    service: str = Field(
        description="The service changed.")
    environment: Environment = Field(
        description="The environment changed.")
    status: str = Field(
        description=("Where it is on its type's path (new, assess, authorize, scheduled, "
                     "implement, review, closed, canceled)."))
    risk: Risk = Field(
        description=("low, moderate, high or very_high: from the risk rules, or a person's "
                     "choice."))
    risk_rule: str | None = Field(description="The risk rule that set the risk, or null; or "
                                              "how a person chose it over the rules'.")
    risk_lowered_by: str | None = Field(
        default=None, description="The manager who lowered the risk below the rules'.")
    risk_reason: str | None = Field(default=None,
                                    description="Why the manager lowered it.")
    planned_start: datetime | None = Field(
        description="When the work is planned to start; null while unplanned.")
    planned_end: datetime | None = Field(
        description="When the work is planned to be done; null while unplanned.")
    incident_id: uuid.UUID | None = Field(description="The incident an emergency change fixes.")
    deployment_id: uuid.UUID | None = Field(description="The deployment that asked for it.")
    requested_by: str = Field(
        description="Who asked for the change (a person, or a pipeline).")
    close_code: CloseCode | None = Field(
        description=("How it went: successful, successful_with_issues or unsuccessful; null until "
                     "it is closed."))
    close_notes: str | None = Field(
        description="What happened, written at closing; null until then.")
    marked_unsuccessful: bool = Field(
        description="Its deployment failed or was rolled back: it closes as unsuccessful.")
    caused_incidents: list[uuid.UUID] = Field(
        description="Incidents a manager confirmed this change caused.")
    forced: bool = Field(description="Scheduled despite conflicts by a manager's force.")
    forced_by: str | None = Field(
        description="The manager who scheduled it despite conflicts; null when none did.")
    window_forced_by: str | None = Field(
        default=None, description="The manager who had it implemented outside its planned "
                                  "window (force: true).")
    window_extended_reason: str | None = Field(
        default=None, description="Why its planned window was moved to cover now: an "
                                  "emergency change (or a deployment's own change) scheduled "
                                  "or implemented outside it.")
    approvals: list[ApprovalPublic] = Field(description="Decisions since the last revert to new.")
    approvals_required: int = Field(
        description="How many approvals it needs to be authorized.")
    approvals_received: int = Field(
        description="How many approvals it has since the last revert to new.")
    approval_rule: ApprovalRulePublic = Field(
        description="How this change is approved: by any managers, or by ownership (a manager "
                    "of the service's owner team and one of its operations team).")
    template_id: uuid.UUID | None = Field(
        default=None, description="The standard change template it was recorded from.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    closed_at: datetime | None = Field(
        description="When it was closed or canceled; null until then.")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it was requested.")
    updated_at: datetime = Field(
        description="When it last changed.")


ChangesPage = Page[ChangePublic]


class ChangeTransitionRequest(TransitionRequest):
    machines = tuple(PATHS.values())
    force: bool = Field(
        default=False,
        description=("A manager's override: of conflicts when moving to scheduled, of the planned "
                     "window when moving to implement."),
        examples=[False])
    close_code: CloseCode | None = Field(
        default=None,
        description="How it went, when moving to closed.",
        examples=["successful"])
    close_notes: str | None = Field(
        description="What happened, when moving to closed.",
        examples=["Switched over at 22:14; no errors, p99 latency unchanged."],
        default=None, max_length=10000)


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"] = Field(
        description=("approve or reject; a rejection sends a normal or emergency change back to "
                     "new."),
        examples=["approve"])
    comment: str = Field(
        description="Why, for the record.",
        examples=["Rollback plan reviewed; fine for tonight."],
        default="", max_length=2000)
    force: bool = Field(
        default=False,
        description=("With the approval that completes authorization, schedule it despite "
                     "conflicts (a manager's call)."),
        examples=[False])


class Conflict(BaseModel):
    kind: Literal["change", "freeze"] = Field(
        description=("change: another change of the service in an overlapping window; freeze: a "
                     "freeze covering the window."))
    id: uuid.UUID = Field(
        description="The conflicting change's or freeze's id.")
    number: str = Field(
        description="Its number (CHG0000013, FRZ0000002).")
    detail: str = Field(
        description="What conflicts, in a sentence.")
    starts_at: datetime | None = Field(
        description="When the conflicting window starts; null when it has none.")
    ends_at: datetime | None = Field(
        description="When it ends; null when open-ended (an incident's freeze).")
    status: str = Field(
        description="The conflicting change's or freeze's state.")


class ConflictsPublic(BaseModel):
    change_id: uuid.UUID = Field(
        description="The change checked.")
    items: list[Conflict] = Field(
        description="What its planned window conflicts with; empty when nothing does.")


class FreezeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[ServiceName] = Field(
        examples=[["checkout", "payments"]],
        default_factory=list, max_length=200,
        description="The services frozen; empty for every "
                    "service.")
    environments: list[Environment] = Field(
        examples=[["production"]],
        default_factory=list, max_length=10,
        description="The environments frozen; empty (the default) for every environment.")
    starts_at: UTCTime = Field(
        description="When the freeze starts (RFC 3339 with its offset).",
        examples=["2026-12-20T00:00:00Z"])
    ends_at: UTCTime = Field(
        description="When it ends; after starts_at.",
        examples=["2027-01-04T00:00:00Z"])
    reason: str = Field(
        description="Why changes stop, as people will read it.",
        examples=["Year-end trading peak"],
        min_length=1, max_length=2000)


class FreezePublic(BaseModel):
    id: uuid.UUID = Field(
        description="The freeze's id.")
    number: str = Field(
        description="The freeze's number (FRZ and seven digits).")
    services: list[str] = Field(description="The services frozen; empty for every service.")
    environments: list[str] = Field(
        default_factory=list,
        description="The environments frozen; empty for every environment. An incident's "
                    "freeze covers the incident's environment only.")
    starts_at: datetime = Field(
        description="When the freeze starts.")
    ends_at: datetime | None = Field(
        description="Null for an incident's freeze: it lasts until the incident is resolved.")
    status: Literal["scheduled", "active", "ended"] = Field(
        description="scheduled: not started yet; active: in force now; ended.")
    source: Literal["manual", "incident"] = Field(
        description="manual: set by a person; incident: set by an open major incident.")
    incident_id: uuid.UUID | None = Field(
        description="The major incident that froze the service; null for a manual freeze.")
    reason: str = Field(
        description="Why changes stop.")
    created_by: str = Field(
        description="Who set it (a person, or the incident's service).")
    ended_at: datetime | None = Field(
        description="When it was ended early, or its incident was over; null otherwise.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it was recorded.")
    updated_at: datetime = Field(
        description="When it last changed.")


FreezesPage = Page[FreezePublic]


class FreezeTransitionRequest(TransitionRequest):
    machines = (FREEZE_API_MOVES,)


class CalendarPublic(BaseModel):
    from_: datetime = Field(
        description="The start of the period shown.",
        alias="from")
    to: datetime = Field(
        description="The end of the period shown.")
    changes: list[ChangePublic] = Field(
        description="The changes planned in the period, by planned start.")
    freezes: list[FreezePublic] = Field(
        description="The freezes in force at some time in the period.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SuccessScorePublic(BaseModel):
    service: str = Field(
        description="The service scored.")
    score: int = Field(
        description=("Its change success score: +3 per successful change, -2 with issues, -5 "
                     "unsuccessful, and -10, -5, -2 per P1, P2, P3 incident a change caused."))
    closed_changes: int = Field(
        description="How many of its changes are closed.")
    caused_incidents: int = Field(
        description="How many incidents its changes were confirmed to have caused.")


class StandardChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: ServiceName = Field(
        description="The service the template is for, by its catalog name.",
        examples=["checkout"])
    title: str = Field(
        description="What a change from it does, in a line.",
        examples=["Roll out a new checkout build"],
        min_length=1, max_length=200)
    description: str = Field(
        description="The pre-authorized procedure: steps, checks, rollback; empty when unset.",
        examples=["Canary 10% for 15 minutes, then 100%; rollback: redeploy the previous build."],
        default="", max_length=10000)
    max_window_minutes: int = Field(
        examples=[60],
        ge=1, le=7 * 24 * 60,
        description="The longest window a change from it may take.")


class StandardChangeUpdate(BaseModel):
    """A PATCH: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(
        description="A new title.",
        examples=["Roll out a new checkout build"],
        default=None, min_length=1, max_length=200)
    description: str | None = Field(
        description="A new procedure.",
        examples=["Canary 10% for 30 minutes, then 100%."],
        default=None, max_length=10000)
    max_window_minutes: int | None = Field(
        description="The longest window a change from it may take, in minutes.",
        examples=[90],
        default=None, ge=1, le=7 * 24 * 60)


class StandardChangePublic(BaseModel):
    """A standard change template, as the API returns it and its events carry it."""

    id: uuid.UUID = Field(
        description="The template's id.")
    number: str = Field(
        description="The template's number (STD and seven digits).")
    service: str = Field(
        description="The service it is for.")
    title: str = Field(
        description="What a change from it does.")
    description: str = Field(
        description="The pre-authorized procedure; empty when none was written.")
    max_window_minutes: int = Field(
        description="The longest window a change from it may take, in minutes.")
    status: Literal["active", "retired"] = Field(
        description="active: changes may be recorded from it; retired: no longer.")
    approved_by: str = Field(description="The owner who wrote it down.")
    retired_at: datetime | None = Field(
        description="When it was retired; null while active.")
    retired_by: str | None = Field(
        description="Who retired it; null while active.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    version: int = Field(
        description="The version to send as If-Match with a change; each change adds one.")
    created_at: datetime = Field(
        description="When it was written down.")
    updated_at: datetime = Field(
        description="When it last changed.")


StandardChangesPage = Page[StandardChangePublic]


class StandardChangeTransitionRequest(TransitionRequest):
    machines = (TEMPLATE_LIFECYCLE,)
