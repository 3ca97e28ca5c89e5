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
from tandem.vocabulary import Environment


class ChangeType(StrEnum):
    standard = "standard"
    normal = "normal"
    emergency = "emergency"


class CloseCode(StrEnum):
    successful = "successful"
    successful_with_issues = "successful_with_issues"
    unsuccessful = "unsuccessful"


SERVICE_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
#: A client's time with its offset, kept in UTC.
UTCTime = Moment
ServiceName = Annotated[str, Field(min_length=1, max_length=100, pattern=SERVICE_PATTERN)]


class ChangeCreate(BaseModel):
    """A change request. A planned window gives both ends (or neither)."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra=together("planned_start", "planned_end"))

    type: ChangeType
    title: str | None = Field(default=None, min_length=1, max_length=200,
                              description="Required, unless a template gives it.")
    description: str | None = Field(default=None, max_length=10000)
    service: str = Field(min_length=1, max_length=100, pattern=SERVICE_PATTERN)
    environment: Environment
    planned_start: UTCTime | None = None
    planned_end: UTCTime | None = None
    risk: Risk | None = Field(
        default=None, description="A proposed risk: no lower than the rules' (a manager may "
                                  "lower it, with risk_reason).")
    risk_reason: str | None = Field(default=None, min_length=1, max_length=2000,
                                    description="Why a manager lowers the risk below the "
                                                "rules'.")
    incident_id: uuid.UUID | None = None
    template_id: uuid.UUID | None = Field(
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

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    planned_start: UTCTime | None = None
    planned_end: UTCTime | None = None
    risk: Risk | None = None
    risk_reason: str | None = Field(default=None, min_length=1, max_length=2000)
    incident_id: uuid.UUID | None = None


class ApprovalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    approver: str
    decision: Literal["approve", "reject"]
    comment: str
    created_at: datetime


class ApprovalSidePublic(BaseModel):
    side: Literal["owner", "operations"]
    team: str
    approved_by: list[str] = Field(description="Managers of this team who approved.")


class ApprovalRulePublic(BaseModel):
    """How a change is approved (from what the catalog says of its service)."""

    kind: Literal["none", "managers", "ownership"] = Field(
        description="none: pre-authorized (standard); managers: any managers; ownership: a "
                    "manager of each side's team.")
    tier: int | None
    owner_team: str | None
    operations_team: str | None
    unowned: bool = Field(description="The catalog has no owner team for the service.")
    sides: list[ApprovalSidePublic]
    missing: list[str] = Field(description="Teams whose manager's approval is still needed.")
    note: str | None


class ChangePublic(BaseModel):
    id: uuid.UUID
    number: str
    type: ChangeType
    title: str
    description: str
    service: str
    environment: Environment
    status: str
    risk: Risk
    risk_rule: str | None = Field(description="The risk rule that set the risk, or null; or "
                                              "how a person chose it over the rules'.")
    risk_lowered_by: str | None = Field(
        default=None, description="The manager who lowered the risk below the rules'.")
    risk_reason: str | None = Field(default=None,
                                    description="Why the manager lowered it.")
    planned_start: datetime | None
    planned_end: datetime | None
    incident_id: uuid.UUID | None = Field(description="The incident an emergency change fixes.")
    deployment_id: uuid.UUID | None = Field(description="The deployment that asked for it.")
    requested_by: str
    close_code: CloseCode | None
    close_notes: str | None
    marked_unsuccessful: bool = Field(
        description="Its deployment failed or was rolled back: it closes as unsuccessful.")
    caused_incidents: list[uuid.UUID] = Field(
        description="Incidents a manager confirmed this change caused.")
    forced: bool = Field(description="Scheduled despite conflicts by a manager's force.")
    forced_by: str | None
    window_forced_by: str | None = Field(
        default=None, description="The manager who had it implemented outside its planned "
                                  "window (force: true).")
    window_extended_reason: str | None = Field(
        default=None, description="Why its planned window was moved to cover now: an "
                                  "emergency change (or a deployment's own change) scheduled "
                                  "or implemented outside it.")
    approvals: list[ApprovalPublic] = Field(description="Decisions since the last revert to new.")
    approvals_required: int
    approvals_received: int
    approval_rule: ApprovalRulePublic = Field(
        description="How this change is approved: by any managers, or by ownership (a manager "
                    "of the service's owner team and one of its operations team).")
    template_id: uuid.UUID | None = Field(
        default=None, description="The standard change template it was recorded from.")
    allowed_transitions: list[str]
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


ChangesPage = Page[ChangePublic]


class ChangeTransitionRequest(TransitionRequest):
    machines = tuple(PATHS.values())
    #: A manager's override: of conflicts when moving to scheduled, of the planned window when
    #: moving to implement.
    force: bool = False
    close_code: CloseCode | None = None
    close_notes: str | None = Field(default=None, max_length=10000)


class ApprovalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str = Field(default="", max_length=2000)
    #: With the approval that completes authorization, schedule despite conflicts.
    force: bool = False


class Conflict(BaseModel):
    kind: Literal["change", "freeze"]
    id: uuid.UUID
    number: str
    detail: str
    starts_at: datetime | None
    ends_at: datetime | None
    status: str


class ConflictsPublic(BaseModel):
    change_id: uuid.UUID
    items: list[Conflict]


class FreezeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    services: list[ServiceName] = Field(default_factory=list, max_length=200,
                                        description="The services frozen; empty for every "
                                                    "service.")
    environments: list[Environment] = Field(
        default_factory=list, max_length=10,
        description="The environments frozen; empty (the default) for every environment.")
    starts_at: UTCTime
    ends_at: UTCTime
    reason: str = Field(min_length=1, max_length=2000)


class FreezePublic(BaseModel):
    id: uuid.UUID
    number: str
    services: list[str] = Field(description="The services frozen; empty for every service.")
    environments: list[str] = Field(
        default_factory=list,
        description="The environments frozen; empty for every environment. An incident's "
                    "freeze covers the incident's environment only.")
    starts_at: datetime
    ends_at: datetime | None = Field(
        description="Null for an incident's freeze: it lasts until the incident is resolved.")
    status: Literal["scheduled", "active", "ended"]
    source: Literal["manual", "incident"]
    incident_id: uuid.UUID | None
    reason: str
    created_by: str
    ended_at: datetime | None
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


FreezesPage = Page[FreezePublic]


class FreezeTransitionRequest(TransitionRequest):
    machines = (FREEZE_API_MOVES,)


class CalendarPublic(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    changes: list[ChangePublic]
    freezes: list[FreezePublic]

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class SuccessScorePublic(BaseModel):
    service: str
    score: int
    closed_changes: int
    caused_incidents: int


class StandardChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: ServiceName
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    max_window_minutes: int = Field(ge=1, le=7 * 24 * 60,
                                    description="The longest window a change from it may take.")


class StandardChangeUpdate(BaseModel):
    """A PATCH: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    max_window_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)


class StandardChangePublic(BaseModel):
    """A standard change template, as the API returns it and its events carry it."""

    id: uuid.UUID
    number: str
    service: str
    title: str
    description: str
    max_window_minutes: int
    status: Literal["active", "retired"]
    approved_by: str = Field(description="The owner who wrote it down.")
    retired_at: datetime | None
    retired_by: str | None
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


StandardChangesPage = Page[StandardChangePublic]


class StandardChangeTransitionRequest(TransitionRequest):
    machines = (TEMPLATE_LIFECYCLE,)
