"""The tables: changes and their approvals, freezes, standard change templates, success
scores, and the projections of incidents and of the catalog's services and teams."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column as SAColumn
from sqlalchemy import Index, Text
from sqlmodel import Field as Column

from tandem.aggregate import AggregateColumns
from tandem.db import JSONType, UTCDateTime, new_id, service_table_base, utcnow

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


class Change(ServiceTable, AggregateColumns, table=True):
    """A change request (aggregate ``change``, numbers ``CHG...``)."""

    __table_args__ = (
        Index("ix_change_created_at", "created_at"),
        Index("ix_change_schedule", "service", "environment", "planned_start"),
    )

    type: str = Column(max_length=16)
    title: str = Column(max_length=200)
    description: str = Column(sa_column=SAColumn(Text, nullable=False))
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    status: str = Column(index=True, max_length=16)
    risk: str = Column(max_length=16)
    risk_rule: str | None = Column(default=None, max_length=200)
    risk_set_by_requester: bool = False
    #: The manager who lowered the risk below the rules', and why.
    risk_lowered_by: str | None = Column(default=None, max_length=255)
    risk_reason: str | None = Column(default=None, sa_column=SAColumn(Text, nullable=True))
    planned_start: datetime | None = Column(default=None, sa_type=UTCDateTime)
    planned_end: datetime | None = Column(default=None, sa_type=UTCDateTime)
    incident_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = Column(default=None, unique=True)
    #: The standard change template it was recorded from (a pre-authorized path), or null.
    template_id: uuid.UUID | None = Column(default=None, index=True)
    requested_by: str = Column(max_length=255)
    close_code: str | None = Column(default=None, max_length=32)
    close_notes: str | None = Column(default=None, sa_column=SAColumn(Text, nullable=True))
    marked_unsuccessful: bool = False
    caused_incidents: list[str] = Column(default_factory=list,
                                         sa_column=SAColumn(JSONType, nullable=False))
    forced: bool = False
    forced_by: str | None = Column(default=None, max_length=255)
    #: The manager who had it implemented outside its planned window (``force``).
    window_forced_by: str | None = Column(default=None, max_length=255)
    #: Why its window was moved to cover now (an emergency change, or a deployment's own
    #: change, scheduled or implemented outside the planned one).
    window_extended_reason: str | None = Column(default=None,
                                                sa_column=SAColumn(Text, nullable=True))
    closed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)


class ChangeApproval(ServiceTable, table=True):
    """A manager's decision; ``active`` turns false when the change reverts to new."""

    __tablename__ = "change_approval"

    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    change_id: uuid.UUID = Column(index=True, foreign_key="change.id")
    approver: str = Column(max_length=255)
    decision: str = Column(max_length=16)
    comment: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
    active: bool = True
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class Freeze(ServiceTable, AggregateColumns, table=True):
    """A freeze window (aggregate ``freeze``, numbers ``FRZ...``)."""

    __table_args__ = (Index("ix_freeze_created_at", "created_at"),)

    services: list[str] = Column(default_factory=list,
                                 sa_column=SAColumn(JSONType, nullable=False))
    #: The environments frozen; empty for every one (an incident's freeze: its environment).
    environments: list[str] = Column(default_factory=list,
                                     sa_column=SAColumn(JSONType, nullable=False))
    starts_at: datetime = Column(sa_type=UTCDateTime, index=True)
    #: Null for an incident's freeze: it lasts until the incident is resolved or canceled.
    ends_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    status: str = Column(index=True, max_length=16)
    source: str = Column(max_length=16)
    incident_id: uuid.UUID | None = Column(default=None, unique=True)
    reason: str = Column(sa_column=SAColumn(Text, nullable=False))
    created_by: str = Column(max_length=255)
    ended_at: datetime | None = Column(default=None, sa_type=UTCDateTime)


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


class StandardChange(ServiceTable, AggregateColumns, table=True):
    """A standard change template (aggregate ``standard_change``, numbers ``STD...``): an
    owner-approved, repeatable change of one service, with the longest window it may take."""

    __tablename__ = "standard_change"
    __table_args__ = (Index("ix_standard_change_created_at", "created_at"),
                      Index("ix_standard_change_service", "service", "status"))

    service: str = Column(max_length=100)
    title: str = Column(max_length=200)
    description: str = Column(sa_column=SAColumn(Text, nullable=False))
    max_window_minutes: int
    status: str = Column(max_length=16)
    #: The owner who approved the template by writing it down.
    approved_by: str = Column(max_length=255)
    retired_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    retired_by: str | None = Column(default=None, max_length=255)


class ServiceView(ServiceTable, table=True):
    """What this service knows of the catalog's services, from ``tandem.catalog``: a change's
    tier (risk, approvals) and the teams that approve it."""

    __tablename__ = "service_view"

    id: uuid.UUID = Column(primary_key=True)
    name: str = Column(index=True, max_length=100)
    tier: int | None = None
    owner_team: str | None = Column(default=None, max_length=100)
    operations_team: str | None = Column(default=None, max_length=100)
    #: Whose CI jobs may record the service's standard changes.
    repository: str | None = Column(default=None, max_length=255)
    #: Where those jobs may record them (empty: anywhere).
    ci_environments: list[str] = Column(default_factory=list,
                                        sa_column=SAColumn(JSONType, nullable=False))
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class TeamView(ServiceTable, table=True):
    """What this service knows of the catalog's teams: their members (token subs), who may
    approve for a team."""

    __tablename__ = "team_view"

    id: uuid.UUID = Column(primary_key=True)
    name: str = Column(index=True, max_length=100)
    members: list[str] = Column(default_factory=list,
                                sa_column=SAColumn(JSONType, nullable=False))
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
