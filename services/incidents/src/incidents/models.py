"""The incidents service's tables: incidents, their timeline, SLA breaches, the policy, and
the projections of deployments, changes and the catalog's services. The API's shapes are in
:mod:`incidents.schemas`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy import Column as SAColumn
from sqlmodel import Field as Column

from tandem.aggregate import AggregateColumns
from tandem.db import JSONType, UTCDateTime, service_table_base, utcnow

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


#: Open, as the partial indexes' text: a query carrying it as written (not with bound values)
#: lets SQLite use those indexes instead of every incident of the service.
OPEN = "status IN ('new', 'acknowledged', 'in_progress', 'on_hold')"
#: The condition of the open-dedup-key index. A query by keys carries only ``OPEN``: its
#: ``dedup_key IN (...)`` implies the rest, and an explicit ``IS NOT NULL`` made SQLite read
#: the index as a range (every open incident of the service with a key) instead of a lookup
#: per key.
OPEN_WITH_DEDUP_KEY = f"dedup_key IS NOT NULL AND {OPEN}"
#: The condition of the index of open incidents a failed deployment opened (used the same way).
OPEN_FROM_DEPLOYMENT = f"source = 'deployment' AND {OPEN}"


class Incident(ServiceTable, AggregateColumns, table=True):
    """An incident: the aggregate ``incident`` (id, number, version, created/updated times
    from :class:`~tandem.aggregate.AggregateColumns`)."""

    __table_args__ = (
        # A monitor's dedup key names at most one open incident per service.
        Index("ux_incident_open_dedup_key", "service", "dedup_key", unique=True,
              sqlite_where=text(OPEN_WITH_DEDUP_KEY),
              postgresql_where=text(OPEN_WITH_DEDUP_KEY)),
        Index("ix_incident_open_from_deployment", "service", "environment",
              sqlite_where=text(OPEN_FROM_DEPLOYMENT),
              postgresql_where=text(OPEN_FROM_DEPLOYMENT)),
        Index("ix_incident_created_at", "created_at"),
        # The SLA check scans open incidents by due time.
        Index("ix_incident_response_due", "response_due_at"),
        Index("ix_incident_resolution_due", "resolution_due_at"),
        Index("ux_incident_external_id", "external_id", unique=True),
    )

    title: str = Column(max_length=200)
    description: str = Column(sa_column=SAColumn(Text, nullable=False))
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    impact: int
    urgency: int
    priority: int
    priority_overridden: bool = False
    major: bool
    major_declared: bool = False
    status: str = Column(index=True, max_length=16)
    assignment_group: str | None = Column(default=None, max_length=100)
    assignee: str | None = Column(default=None, max_length=255)
    on_hold_reason: str | None = Column(default=None, max_length=32)
    resolution_code: str | None = Column(default=None, max_length=32)
    resolution_notes: str | None = Column(default=None, sa_column=SAColumn(Text, nullable=True))
    reopen_count: int = 0
    source: str = Column(default="manual", max_length=16)
    dedup_key: str | None = Column(default=None, max_length=255)
    alert_count: int = 0
    opened_by_deployment_id: uuid.UUID | None = Column(default=None, unique=True)
    cause_deployment_id: uuid.UUID | None = Column(default=None, index=True)
    cause_change_id: uuid.UUID | None = Column(default=None, index=True)
    cause_status: str | None = Column(default=None, max_length=16)
    cause_confirmed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    cause_confirmed_by: str | None = Column(default=None, max_length=255)
    reported_by: str = Column(max_length=255)
    reported_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    mitigated_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    response_due_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    resolution_due_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    response_breached_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    resolution_breached_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    #: Since when the resolution SLA's clock stands still (resolved, or on hold for a pausing
    #: reason); null while it runs.
    resolution_paused_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    #: Seconds the resolution clock stood still in earlier pauses (already in its due time).
    resolution_paused_seconds: float = 0.0
    #: Its id where it came from (``import:<id>``, a PagerDuty incident's): one incident per id.
    external_id: str | None = Column(default=None, max_length=300)


class MonitorEventRecord(ServiceTable, table=True):
    """A monitor event ``POST /v2/enqueue`` accepted and the applier has not applied yet
    (:mod:`incidents.monitor_events`). The 202 is answered once this row is committed; the
    applier applies rows in ``seq`` order and deletes them in the transaction of their effects,
    so a crash after the 202 loses nothing and applies nothing twice."""

    __tablename__ = "monitor_event"

    seq: int | None = Column(default=None, sa_column=SAColumn(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    received_at: datetime = Column(sa_type=UTCDateTime)
    service: str = Column(max_length=100)
    environment: str = Column(max_length=16)
    #: ``trigger``, ``acknowledge`` or ``resolve``.
    action: str = Column(max_length=16)
    dedup_key: str = Column(max_length=255)
    actor: str = Column(max_length=255)
    #: A trigger's alert (summary, source, severity and the rest it was sent with).
    alert: dict[str, Any] | None = Column(default=None,
                                          sa_column=SAColumn(JSONType, nullable=True))
    #: Set when applying the event alone failed: it is kept, skipped, for an operator.
    failed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    error: str | None = Column(default=None, sa_column=SAColumn(Text, nullable=True))


class IncidentEvent(ServiceTable, table=True):
    """Every event about an incident, as published: the incident's timeline (written by the
    aggregate's ``recorded`` hook, :mod:`incidents.timeline`)."""

    __tablename__ = "incident_event"
    # One event per version: a concurrent second writer of the same version fails here.
    __table_args__ = (UniqueConstraint("incident_id", "sequence", name="uq_incident_event_seq"),)

    id: uuid.UUID = Column(primary_key=True)
    incident_id: uuid.UUID = Column(index=True)
    sequence: int
    type: str = Column(max_length=128)
    time: datetime = Column(sa_type=UTCDateTime)
    actor: str = Column(max_length=255)
    data: dict[str, Any] = Column(sa_column=SAColumn(JSONType, nullable=False))


class SlaBreach(ServiceTable, table=True):
    """One row per (incident, kind): the guard that makes a breach fire exactly once."""

    __tablename__ = "sla_breach"

    incident_id: uuid.UUID = Column(primary_key=True)
    kind: str = Column(primary_key=True, max_length=16)
    due_at: datetime = Column(sa_type=UTCDateTime)
    detected_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class IncidentPolicy(ServiceTable, table=True):
    """The owner-edited priority matrix and SLA targets (one row; absent = the settings)."""

    __tablename__ = "incident_policy"

    id: int = Column(default=1, primary_key=True)
    priority_matrix: list[list[int]] = Column(sa_column=SAColumn(JSONType, nullable=False))
    #: {"1": [response_seconds, resolution_seconds], ...}
    sla_targets: dict[str, list[int | None]] = Column(sa_column=SAColumn(JSONType, nullable=False))
    version: int = 1
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: str = Column(max_length=255)


class DeploymentView(ServiceTable, table=True):
    """What this service knows of deployments, from ``tandem.deployments`` (S2, S3)."""

    __tablename__ = "deployment_view"

    id: uuid.UUID = Column(primary_key=True)
    number: str = Column(max_length=16)
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    #: The deployed software's version (the snapshot's ``software_version``).
    software_version: str | None = Column(default=None, max_length=200)
    change_id: uuid.UUID | None = None
    status: str = Column(max_length=16)
    #: When it started to run (or was first seen running); null while it never ran.
    deployed_at: datetime | None = Column(default=None, sa_type=UTCDateTime, index=True)
    #: When it went live: when it succeeded (a rolled back one too), else when it ran.
    live_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class ChangeView(ServiceTable, table=True):
    """What this service knows of change requests, from ``tandem.changes`` (S3)."""

    __tablename__ = "change_view"

    id: uuid.UUID = Column(primary_key=True)
    number: str = Column(max_length=16)
    type: str = Column(max_length=16)
    title: str = Column(default="", max_length=200)
    service: str = Column(index=True, max_length=100)
    environment: str = Column(max_length=16)
    status: str = Column(max_length=16)
    #: The deployment that asked for it (a gate's receipt or approval request), if any.
    deployment_id: uuid.UUID | None = Column(default=None, index=True)
    #: When it first reached ``implement`` (or a later state); null if it never did.
    implemented_at: datetime | None = Column(default=None, sa_type=UTCDateTime, index=True)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class ServiceView(ServiceTable, table=True):
    """What this service knows of the catalog's services, from ``tandem.catalog``: who runs a
    service (assignment) and which services a team has (metrics by team)."""

    __tablename__ = "service_view"

    id: uuid.UUID = Column(primary_key=True)
    name: str = Column(index=True, max_length=100)
    owner_team: str | None = Column(default=None, index=True, max_length=100)
    operations_team: str | None = Column(default=None, index=True, max_length=100)
    tier: int | None = None
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class FreezeView(ServiceTable, table=True):
    """What this service knows of freezes, from ``tandem.changes``: the freezes a
    post-incident review's timeline shows around its incident."""

    __tablename__ = "freeze_view"

    id: uuid.UUID = Column(primary_key=True)
    number: str = Column(max_length=16)
    #: The services frozen; empty for every service.
    services: list[str] = Column(sa_column=SAColumn(JSONType, nullable=False))
    starts_at: datetime = Column(sa_type=UTCDateTime)
    ends_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    status: str = Column(max_length=16)
    source: str = Column(max_length=16)
    incident_id: uuid.UUID | None = Column(default=None, index=True)
    reason: str = Column(default="", sa_column=SAColumn(Text, nullable=False))
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


class Review(ServiceTable, AggregateColumns, table=True):
    """A post-incident review of a resolved major incident: the aggregate ``review``
    (``PIR`` numbers). Owned by the service's operations team, its owner team taking part."""

    incident_id: uuid.UUID = Column(unique=True)
    incident_number: str = Column(max_length=16)
    incident_title: str = Column(max_length=200)
    service: str = Column(index=True, max_length=100)
    priority: int
    status: str = Column(index=True, max_length=16)
    owner_team: str | None = Column(default=None, index=True, max_length=100)
    participant_team: str | None = Column(default=None, index=True, max_length=100)
    due_at: datetime = Column(sa_type=UTCDateTime, index=True)
    started_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    breached_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    #: What happened around the incident, across the services, oldest first (frozen at start).
    timeline: list[dict[str, Any]] = Column(sa_column=SAColumn(JSONType, nullable=False))
    #: The cause as the incident holds it: status and the deployment and change, if any.
    cause: dict[str, Any] = Column(sa_column=SAColumn(JSONType, nullable=False))
    #: The failure's value-stream stages (tandem.value_stream): wait and work of each.
    stream: list[dict[str, Any]] = Column(sa_column=SAColumn(JSONType, nullable=False))
    factors: list[dict[str, Any]] = Column(sa_column=SAColumn(JSONType, nullable=False))


class ReviewAction(ServiceTable, table=True):
    """An action item of a review; one naming a change closes itself when a production
    deployment carrying that change succeeds."""

    __tablename__ = "review_action"
    __table_args__ = (UniqueConstraint("review_id", "seq", name="uq_review_action_seq"),)

    id: uuid.UUID = Column(primary_key=True)
    review_id: uuid.UUID = Column(index=True)
    #: 1, 2, ... within the review (``PIR0000001-2``).
    seq: int
    title: str = Column(max_length=200)
    team: str | None = Column(default=None, index=True, max_length=100)
    change_id: uuid.UUID | None = Column(default=None, index=True)
    change_number: str | None = Column(default=None, max_length=16)
    status: str = Column(index=True, max_length=16)
    created_by: str = Column(max_length=255)
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Column(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Column(default=None, max_length=255)
    closed_by_deployment_id: uuid.UUID | None = Column(default=None)
    closed_by_deployment_number: str | None = Column(default=None, max_length=16)
