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
from tandem.vocabulary import NAME_PATTERN, Environment

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

#: An artifact as a pipeline names it (a package URL), for the API's examples.
ARTIFACT_EXAMPLE = ("pkg:oci/checkout@sha256:"
                    "3b1f9c7e5a2d4f6b8c0e1a3d5f7b9c2e4a6d8f0b1c3e5a7d9f2b4c6e8a0d1f3b")
COMMIT_EXAMPLE = {"sha": "9f3c2a1b7e4d5f60812a3b4c5d6e7f8091a2b3c4",
                  "committed_at": "2026-03-01T09:15:00Z"}
PIPELINE_EXAMPLE = {"id": "gha-8412377",
                    "run_url": "https://ci.example.com/acme/checkout/actions/runs/8412377"}


class Commit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha: str = Field(
        description="The commit's SHA (7 to 64 hex digits).",
        examples=["9f3c2a1b7e4d5f60812a3b4c5d6e7f8091a2b3c4"],
        pattern=r"^[0-9a-fA-F]{7,64}$")
    committed_at: AwareDatetime = Field(
        description="When it was committed (RFC 3339 with its offset); lead time runs from here.",
        examples=["2026-03-01T09:15:00Z"])


class CommitPublic(BaseModel):
    """A deployed commit; its time is null when the tool that reported it did not say (a
    GitHub or GitLab deployment names its sha only), and then no lead time is counted."""

    sha: str = Field(
        description="The commit's SHA.")
    committed_at: datetime | None = Field(
        default=None,
        description=("When it was committed; null when the reporting tool did not say (then no "
                     "lead time is counted for it)."))


class Link(BaseModel):
    href: str = Field(
        description="Where the link goes.")
    text: str | None = Field(
        default=None,
        description="What the link is; null when untitled.")


class PipelineRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        description="The pipeline run's id in the CI system.",
        examples=["gha-8412377"],
        min_length=1, max_length=255)
    run_url: str | None = Field(
        description="Where the run can be seen; null when unknown.",
        examples=["https://ci.example.com/acme/checkout/actions/runs/8412377"],
        default=None, max_length=2000, pattern=r"^https?://\S+$")


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str = Field(
        description="The service deployed, by its catalog name.",
        examples=["checkout"],
        min_length=1, max_length=100, pattern=NAME_PATTERN)
    environment: Environment = Field(
        description="The environment deployed to; production deployments pass the gate.",
        examples=["production"])
    software_version: str = Field(
        examples=["1.4.0"],
        alias="version", min_length=1, max_length=100,
        description="The deployed software's version, any text (the resource's "
                    "`software_version`). Named `version` in this body, as the contract and CI "
                    "tools send it; the resource's own `version` is its aggregate version.")
    artifact: str | None = Field(
        description="The deployed artifact as a package URL; null when unknown.",
        examples=[ARTIFACT_EXAMPLE],
        default=None, max_length=500)
    ref: str | None = Field(
        description="The git ref built (branch or tag); null when unknown.",
        examples=["refs/tags/v1.4.0"],
        default=None, max_length=255)
    commits: list[Commit] = Field(
        description=("The commits it ships, each with its time (lead time runs from it); empty "
                     "when unknown."),
        examples=[[COMMIT_EXAMPLE]],
        default_factory=list, max_length=1000)
    pipeline: PipelineRun | None = Field(
        default=None,
        description="The CI run that deploys it; null when none.",
        examples=[PIPELINE_EXAMPLE])
    change_id: uuid.UUID | None = Field(
        default=None,
        description=("The change it carries (one scheduled or implementing, whose window covers "
                     "now); null lets the gate decide by its mode."),
        examples=["7c1d9e4a-2b3f-4a5c-8d6e-9f0a1b2c3d4e"])
    fixes: str | None = Field(
        examples=["INC0000042"],
        default=None, pattern=r"^INC[0-9]{7}$",
        description="The open production incident of the service this deployment fixes (a "
                    "fix forward), by number: it is rework, and when a failed deployment "
                    "caused that incident it passes the incident's freeze with an emergency "
                    "change recorded for it.")


class Recovery(BaseModel):
    """How a deployment recovers from a failure (null on every other deployment)."""

    kind: Literal["rollback", "fix_forward"] = Field(
        description=("rollback: it puts back the version before a failed deployment; fix_forward: "
                     "a new version that fixes it."))
    deployment_id: uuid.UUID | None = Field(
        description="The failed deployment it recovers from; null when not known.")
    incident_id: uuid.UUID | None = Field(
        description=("The incident it recovers from; null when not known (a fix forward names "
                     "it)."))


class GateReason(BaseModel):
    code: str = Field(
        description=("What the reason is, as a stable code (freeze_active, change_covers, "
                     "change_requested, ...)."))
    message: str = Field(
        description="The reason in a sentence, for people.")


class GatePublic(BaseModel):
    decision: Literal["allowed", "prevented", "awaiting"] = Field(
        description=("allowed: the deployment may start; prevented: it may not; awaiting: a "
                     "change was asked for and waits for approval."))
    reasons: list[GateReason] = Field(
        description="Why, one reason per rule that decided.")
    change_id: uuid.UUID | None = Field(
        description="The change that allowed it or that it waits for; null when none.")
    mode: Literal["receipt", "approval", "off"] = Field(
        description=("How a production deployment without a covering change is gated: receipt (a "
                     "standard change is recorded for it), approval (a normal change is asked for "
                     "and awaited) or off."))
    decided_at: datetime = Field(
        description="When the gate last decided.")


class GateAnswer(GatePublic):
    """``GET /deployments/{id}/gate``: the gate, and which deployment it is of."""

    deployment_id: uuid.UUID = Field(
        description="The deployment gated.")
    deployment_number: str = Field(
        description="Its number (DEP and seven digits).")
    deployment_status: str = Field(
        description="Its state.")


class DeploymentPublic(BaseModel):
    id: uuid.UUID = Field(
        description="The deployment's id.")
    number: str = Field(
        description="The deployment's number, as people quote it (DEP and seven digits).",
        examples=["DEP0000007"])
    service: str = Field(
        description="The service deployed.")
    environment: Environment = Field(
        description="The environment deployed to.")
    software_version: str = Field(
        description="The deployed software's version (sent as `version` when recorded).")
    artifact: str | None = Field(
        description="The deployed artifact as a package URL; null when unknown.")
    ref: str | None = Field(
        description="The git ref built; null when unknown.")
    commits: list[CommitPublic] = Field(
        description="The commits it ships, with their times.")
    pipeline: PipelineRun | None = Field(
        description="The CI run that deploys it; null when none.")
    triggered_by: str = Field(
        description="Who recorded it (a pipeline's or a person's name).")
    change_id: uuid.UUID | None = Field(
        description="The change it carries; null when none.")
    status: str = Field(
        description="requested, in_progress, succeeded, failed, rolled_back or canceled.")
    gate: GatePublic = Field(
        description="The production gate's decision for it.")
    rework: bool = Field(
        description=("Whether it is unplanned work caused by a production incident (a rollback or "
                     "a fix forward): counted in the deployment rework rate."))
    fixes: str | None = Field(
        default=None,
        description="The incident a fix forward fixes, by number; null otherwise.")
    recovery: Recovery | None = Field(
        default=None,
        description="How it recovers from a failure; null for every other deployment.")
    external_id: str | None = Field(
        default=None,
        description=("Its id at the tool that reported it (a GitHub deployment, an imported "
                     "record); null when Tandem recorded it first."))
    summary: str | None = Field(
        default=None,
        description="What the reporting tool said of it (a change event's summary); null if "
                    "nothing.")
    links: list[Link] = Field(default_factory=list,
                              description="Links the reporting tool gave with it.")
    allowed_transitions: list[str] = Field(
        description="The states it may move to next (POST .../transitions).")
    started_at: datetime | None = Field(
        description="When it moved to in_progress; null until then.")
    finished_at: datetime | None = Field(
        description="When it succeeded, failed or was canceled; null until then.")
    version: int = Field(
        description=("The version to send as If-Match with a change; each change adds one (not "
                     "the software's version)."))
    created_at: datetime = Field(
        description="When it was recorded.")
    updated_at: datetime = Field(
        description="When it last changed.")


DeploymentsPage = Page[DeploymentPublic]


class MetricPublic(BaseModel):
    value: float | None = Field(
        description="The figure, in `unit`; null when there is nothing to measure.")
    unit: str = Field(
        description="The figure's unit: deployments/week, hours, ratio (0 to 1) or deployments.")
    sample_size: int = Field(
        description="How many deployments or incidents it is computed over.")
    bucket: Literal["elite", "high", "medium", "low"] | None = Field(
        description=("DORA's performance level for the figure; null when there is no figure or no "
                     "level for it."))


class DoraMetrics(BaseModel):
    deployment_frequency: MetricPublic = Field(
        description="Successful deployments per week.")
    lead_time: MetricPublic = Field(
        description="Median hours from commit to running in the environment.")
    change_failure_rate: MetricPublic = Field(
        description=("The share of deployments that went live and then needed a rollback, a fix "
                     "or caused an incident."))
    failed_deployment_attempts: MetricPublic = Field(
        description=("Deployments that failed before they went live, counted beside the failure "
                     "rate."))
    failed_deployment_recovery_time: MetricPublic = Field(
        description="Median hours from a failed deployment to its recovery.")
    time_to_restore: MetricPublic = Field(
        description="Median hours from an incident reported to resolved.")
    deployment_rework_rate: MetricPublic = Field(
        description="The share of deployments made because of a production incident.")


class DoraReport(BaseModel):
    service: str | None = Field(
        description="The service asked for (service=); null for all.")
    team: str | None = Field(default=None, description="The team asked for (team=).")
    services: list[str] | None = Field(
        default=None, description="With team=: the services it owns or runs, counted here.")
    environment: Environment = Field(
        description="The environment measured.")
    window: str = Field(
        description="The period asked for, back from now (30d, 12h, 4w).")
    since: datetime = Field(
        description="The start of the period.")
    until: datetime = Field(
        description="The end of the period (now, when asked).")
    metrics: DoraMetrics = Field(
        description="The DORA metrics over the period.")
