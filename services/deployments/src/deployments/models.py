"""The deployment table, the projections of other services' events, DORA facts, API schemas.

A deployment's ``version`` is its aggregate version (ETag, ``If-Match``, the events'
``sequence``), as every Tandem resource's is; the deployed software's version is
``software_version``. Only the create body names it ``version``, as the contract and CI tools
send it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Column, Index
from sqlmodel import Field as Col

from tandem.aggregate import AggregateColumns
from tandem.db import JSONType, UTCDateTime, service_table_base
from tandem.pagination import Page
from tandem.vocabulary import Environment

#: This service's tables, in a metadata of their own.
ServiceTable = service_table_base()


# --- tables -----------------------------------------------------------------------------------


class Deployment(ServiceTable, AggregateColumns, table=True):
    """A deployment of one software version of a service to an environment, with its gate."""

    service: str = Col(max_length=100)
    environment: str = Col(max_length=16)
    software_version: str = Col(max_length=100)
    artifact: str | None = Col(default=None, max_length=500)
    ref: str | None = Col(default=None, max_length=255)
    commits: list[dict[str, Any]] = Col(default_factory=list,
                                              sa_column=Column(JSONType, nullable=False))
    pipeline: dict[str, Any] | None = Col(default=None, sa_column=Column(JSONType, nullable=True))
    triggered_by: str = Col(max_length=255)
    change_id: uuid.UUID | None = Col(default=None, index=True)
    status: str = Col(max_length=16)
    gate_decision: str = Col(max_length=16)
    gate_reasons: list[dict[str, str]] = Col(default_factory=list,
                                              sa_column=Column(JSONType, nullable=False))
    gate_change_id: uuid.UUID | None = Col(default=None, index=True)
    gate_mode: str = Col(max_length=16)
    gate_decided_at: datetime = Col(sa_type=UTCDateTime)
    #: Every decision, oldest first (on the row itself: no extra insert on the hot path).
    gate_history: list[dict[str, Any]] = Col(default_factory=list,
                                              sa_column=Column(JSONType, nullable=False))
    change_requested: bool = False
    rework: bool = False
    #: The incident number the pipeline said this deployment fixes (a fix forward), if any.
    fixes: str | None = Col(default=None, max_length=16)
    #: ``rollback`` or ``fix_forward`` when it recovers from a failure; else null.
    recovery: str | None = Col(default=None, max_length=16)
    #: The failed deployment it recovers from, and the incident, when known.
    recovers_deployment_id: uuid.UUID | None = None
    recovers_incident_id: uuid.UUID | None = None
    started_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    #: The deployment's id at the tool that reported it (``github:acme/api:123``,
    #: ``gitlab:42:7``, ``pagerduty:<digest>``, ``import:<id>``): one deployment per id.
    external_id: str | None = Col(default=None, max_length=300)
    #: Recorded from history (``tandem import deployments``): counted, never reacted to.
    imported: bool = False
    #: What the reporting tool said of it (a PagerDuty change event's summary), if anything.
    summary: str | None = Col(default=None, max_length=1024)
    #: Links the reporting tool gave (``[{href, text}]``): its build, its log.
    links: list[dict[str, Any]] = Col(default_factory=list,
                                      sa_column=Column(JSONType, nullable=False))

    __table_args__ = (
        Index("ix_deployment_created", "created_at", "id"),
        Index("ux_deployment_external_id", "external_id", unique=True),
        Index("ix_deployment_service_env", "service", "environment", "status"),
    )


class ChangeView(ServiceTable, table=True):
    """The projection of a change from ``tandem.changes``."""

    __tablename__ = "change_view"

    id: uuid.UUID = Col(primary_key=True)
    number: str = Col(max_length=16)
    type: str = Col(max_length=16)
    service: str = Col(max_length=100, index=True)
    environment: str | None = Col(default=None, max_length=16)
    status: str = Col(max_length=16)
    planned_start: datetime | None = Col(default=None, sa_type=UTCDateTime)
    planned_end: datetime | None = Col(default=None, sa_type=UTCDateTime)
    incident_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = Col(default=None, index=True)
    #: The standard change template it was recorded from (null: outside any template).
    template_id: uuid.UUID | None = None
    rejected: bool = False


class FreezeView(ServiceTable, table=True):
    """The projection of a freeze window from ``tandem.changes``."""

    __tablename__ = "freeze_view"

    id: uuid.UUID = Col(primary_key=True)
    number: str = Col(max_length=16)
    services: list[str] = Col(default_factory=list,
                                              sa_column=Column(JSONType, nullable=False))
    #: The environments frozen; empty for every one.
    environments: list[str] = Col(default_factory=list,
                                  sa_column=Column(JSONType, nullable=False))
    starts_at: datetime = Col(sa_type=UTCDateTime)
    ends_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    status: str = Col(max_length=16, index=True)
    source: str = Col(max_length=16)
    incident_id: uuid.UUID | None = None


class IncidentView(ServiceTable, table=True):
    """The projection of an incident from ``tandem.incidents`` (gate and time to restore)."""

    __tablename__ = "incident_view"

    id: uuid.UUID = Col(primary_key=True)
    number: str = Col(max_length=16)
    service: str = Col(max_length=100)
    environment: str = Col(max_length=16)
    priority: int
    major: bool
    status: str = Col(max_length=16)
    cause_deployment_id: uuid.UUID | None = Col(default=None, index=True)
    reported_at: datetime = Col(sa_type=UTCDateTime)
    resolved_at: datetime | None = Col(default=None, sa_type=UTCDateTime)

    __table_args__ = (Index("ix_incident_view_service", "service", "environment", "status"),)


class ServiceView(ServiceTable, table=True):
    """The projection of a service from ``tandem.catalog`` (DORA by team; the repository whose
    CI jobs may deploy it)."""

    __tablename__ = "service_view"

    id: uuid.UUID = Col(primary_key=True)
    name: str = Col(max_length=100, index=True)
    owner_team: str | None = Col(default=None, max_length=100, index=True)
    operations_team: str | None = Col(default=None, max_length=100, index=True)
    #: Where its code lives (``github.com/acme/payments``): a webhook's repository names it.
    repository: str | None = Col(default=None, max_length=255, index=True)
    #: Where CI jobs of its repository may deploy it (empty: anywhere).
    ci_environments: list[str] = Col(default_factory=list,
                                     sa_column=Column(JSONType, nullable=False))


class IntegrationDelivery(ServiceTable, table=True):
    """A webhook delivery already applied (``X-GitHub-Delivery``, GitLab's event UUID): a
    redelivery changes nothing."""

    __tablename__ = "integration_delivery"

    sender: str = Col(primary_key=True, max_length=16)
    delivery_id: str = Col(primary_key=True, max_length=255)
    received_at: datetime = Col(sa_type=UTCDateTime)


class DoraFact(ServiceTable, table=True):
    """One deployment's DORA record (``tandem.dora.DeploymentRecord``), kept current from its
    transitions; failures and recoveries are derived from these and the incidents when asked."""

    __tablename__ = "dora_fact"

    deployment_id: uuid.UUID = Col(primary_key=True)
    service: str = Col(max_length=100)
    environment: str = Col(max_length=16)
    outcome: str | None = Col(default=None, max_length=16)
    deployed_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    lead_times_s: list[float] = Col(default_factory=list,
                                              sa_column=Column(JSONType, nullable=False))
    #: When a deployment that had gone live was rolled back.
    rolled_back_at: datetime | None = Col(default=None, sa_type=UTCDateTime)
    rework: bool = False

    __table_args__ = (
        Index("ix_dora_fact_finished", "service", "environment", "finished_at"),
        Index("ix_dora_fact_deployed", "service", "environment", "deployed_at"),
    )


# --- API schemas ------------------------------------------------------------------------------

_SERVICE = r"^[a-z0-9][a-z0-9._-]*$"


class Commit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha: str = Field(pattern=r"^[0-9a-fA-F]{7,64}$")
    committed_at: AwareDatetime


class CommitPublic(BaseModel):
    """A deployed commit; its time is null when the tool that reported it did not say (a
    GitHub or GitLab deployment names its sha only), and then no lead time is counted."""

    sha: str
    committed_at: datetime | None = None


class Link(BaseModel):
    href: str
    text: str | None = None


class PipelineRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=255)
    run_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://\S+$")


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=100, pattern=_SERVICE)
    environment: Environment
    software_version: str = Field(
        alias="version", min_length=1, max_length=100,
        description="The deployed software's version, any text (the resource's "
                    "`software_version`). Named `version` in this body, as the contract and CI "
                    "tools send it; the resource's own `version` is its aggregate version.")
    artifact: str | None = Field(default=None, max_length=500)
    ref: str | None = Field(default=None, max_length=255)
    commits: list[Commit] = Field(default_factory=list, max_length=1000)
    pipeline: PipelineRun | None = None
    change_id: uuid.UUID | None = None
    fixes: str | None = Field(
        default=None, pattern=r"^INC[0-9]{7}$",
        description="The open production incident of the service this deployment fixes (a "
                    "fix forward), by number: it is rework, and when a failed deployment "
                    "caused that incident it passes the incident's freeze with an emergency "
                    "change recorded for it.")


class Recovery(BaseModel):
    """How a deployment recovers from a failure (null on every other deployment)."""

    kind: Literal["rollback", "fix_forward"]
    #: The failed deployment it recovers from, if known.
    deployment_id: uuid.UUID | None
    #: The incident it recovers from, if known (a fix forward names it).
    incident_id: uuid.UUID | None


class GateReason(BaseModel):
    code: str
    message: str


class GatePublic(BaseModel):
    decision: Literal["allowed", "prevented", "awaiting"]
    reasons: list[GateReason]
    change_id: uuid.UUID | None
    mode: Literal["receipt", "approval", "off"]
    decided_at: datetime


class GateAnswer(GatePublic):
    """``GET /deployments/{id}/gate``: the gate, and which deployment it is of."""

    deployment_id: uuid.UUID
    deployment_number: str
    deployment_status: str


class DeploymentPublic(BaseModel):
    id: uuid.UUID
    number: str
    service: str
    environment: Environment
    #: The deployed software's version (sent as ``version`` in the create body).
    software_version: str
    artifact: str | None
    ref: str | None
    commits: list[CommitPublic]
    pipeline: PipelineRun | None
    triggered_by: str
    change_id: uuid.UUID | None
    status: str
    gate: GatePublic
    rework: bool
    fixes: str | None = None
    recovery: Recovery | None = None
    #: Its id at the tool that reported it (a GitHub deployment, an imported record), or null.
    external_id: str | None = None
    #: What the reporting tool said of it (a change event's summary), and its links.
    summary: str | None = None
    links: list[Link] = Field(default_factory=list)
    allowed_transitions: list[str]
    started_at: datetime | None
    finished_at: datetime | None
    #: The aggregate version: the ETag, what ``If-Match`` names, the events' ``sequence``.
    version: int
    created_at: datetime
    updated_at: datetime


DeploymentsPage = Page[DeploymentPublic]


class MetricPublic(BaseModel):
    value: float | None
    unit: str
    sample_size: int
    bucket: Literal["elite", "high", "medium", "low"] | None


class DoraMetrics(BaseModel):
    deployment_frequency: MetricPublic
    lead_time: MetricPublic
    change_failure_rate: MetricPublic
    failed_deployment_attempts: MetricPublic
    failed_deployment_recovery_time: MetricPublic
    time_to_restore: MetricPublic
    deployment_rework_rate: MetricPublic


class DoraReport(BaseModel):
    service: str | None
    team: str | None = Field(default=None, description="The team asked for (team=).")
    services: list[str] | None = Field(
        default=None, description="With team=: the services it owns or runs, counted here.")
    environment: Environment
    window: str
    since: datetime
    until: datetime
    metrics: DoraMetrics
