"""The change, approval, freeze, score and incident tables, and their API schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Column as SAColumn
from sqlmodel import Field as Column

from changes.config import Risk
from tandem.db import JSONType, UTCDateTime, new_id, service_table_base, utcnow
from tandem.pagination import Page
from tandem.transitions import TransitionRequest
from tandem.vocabulary import Environment

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


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
UTCTime = Annotated[AwareDatetime, AfterValidator(lambda value: value.astimezone(UTC))]
ServiceName = Annotated[str, Field(min_length=1, max_length=100, pattern=SERVICE_PATTERN)]


# --- tables -------------------------------------------------------------------------------


class Change(ServiceTable, table=True):
    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    number: str = Column(unique=True, max_length=16)
    type: str = Column(max_length=16)
    title: str = Column(max_length=200)
    description: str
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    status: str = Column(index=True, max_length=16)
    risk: str = Column(max_length=16)
    risk_rule: str | None = Column(default=None, max_length=200)
    risk_set_by_requester: bool = False
    planned_start: datetime | None = Column(default=None, sa_type=UTCDateTime)
    planned_end: datetime | None = Column(default=None, sa_type=UTCDateTime)
    incident_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = Column(default=None, unique=True)
    requested_by: str = Column(max_length=255)
    close_code: str | None = Column(default=None, max_length=32)
    close_notes: str | None = None
    marked_unsuccessful: bool = False
    caused_incidents: list[str] = Column(default_factory=list,
                                         sa_column=SAColumn(JSONType, nullable=False))
    forced: bool = False
    forced_by: str | None = Column(default=None, max_length=255)
    closed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    version: int = 1
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class ChangeApproval(ServiceTable, table=True):
    """A manager's decision; ``active`` turns false when the change reverts to new."""

    __tablename__ = "change_approval"

    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    change_id: uuid.UUID = Column(index=True, foreign_key="change.id")
    approver: str = Column(max_length=255)
    decision: str = Column(max_length=16)
    comment: str = ""
    active: bool = True
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class Freeze(ServiceTable, table=True):
    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    number: str = Column(unique=True, max_length=16)
    services: list[str] = Column(default_factory=list,
                                 sa_column=SAColumn(JSONType, nullable=False))
    starts_at: datetime = Column(sa_type=UTCDateTime, index=True)
    #: Null for an incident's freeze: it lasts until the incident is resolved or canceled.
    ends_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    status: str = Column(index=True, max_length=16)
    source: str = Column(max_length=16)
    incident_id: uuid.UUID | None = Column(default=None, unique=True)
    reason: str
    created_by: str = Column(max_length=255)
    ended_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    version: int = 1
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class ServiceScore(ServiceTable, table=True):
    """The change success score of one service (ServiceNow's weights, domain.md)."""

    __tablename__ = "service_score"

    service: str = Column(primary_key=True, max_length=100)
    score: int = 0
    closed_changes: int = 0
    caused_incidents: int = 0
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class IncidentView(ServiceTable, table=True):
    """This service's projection of the incidents topic (for risk and S4 freezes)."""

    __tablename__ = "incident_view"

    id: uuid.UUID = Column(primary_key=True)
    number: str = Column(max_length=16)
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    priority: int
    major: bool
    status: str = Column(max_length=16)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


# --- API schemas ----------------------------------------------------------------------------


class ChangeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ChangeType
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10000)
    service: str = Field(min_length=1, max_length=100, pattern=SERVICE_PATTERN)
    environment: Environment
    planned_start: UTCTime | None = None
    planned_end: UTCTime | None = None
    risk: Risk | None = None
    incident_id: uuid.UUID | None = None


class ChangeUpdate(BaseModel):
    """A PATCH: only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10000)
    planned_start: UTCTime | None = None
    planned_end: UTCTime | None = None
    risk: Risk | None = None
    incident_id: uuid.UUID | None = None


class ApprovalPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    approver: str
    decision: Literal["approve", "reject"]
    comment: str
    created_at: datetime


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
    risk_rule: str | None = Field(description="The risk rule that set the risk, or null.")
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
    approvals: list[ApprovalPublic] = Field(description="Decisions since the last revert to new.")
    approvals_required: int
    approvals_received: int
    allowed_transitions: list[str]
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


ChangesPage = Page[ChangePublic]


class ChangeTransitionRequest(TransitionRequest):
    #: A manager's override of conflicts when moving to scheduled.
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
    starts_at: UTCTime
    ends_at: UTCTime
    reason: str = Field(min_length=1, max_length=2000)


class FreezePublic(BaseModel):
    id: uuid.UUID
    number: str
    services: list[str] = Field(description="The services frozen; empty for every service.")
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
    pass


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
