"""The ``data`` of every event the deployments service publishes, one model per event type.

``EVENT_DATA`` feeds the generated event documentation; every event is written by
``deployments.record`` (:mod:`deployments.deployment`) from these models, so the documented
schema and the published bytes agree.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from deployments.models import DeploymentPublic, Environment, GatePublic
from tandem.aggregate import EventData, event_catalog


class DeploymentCreated(EventData):
    """A deployment was recorded (its snapshot already carries the first gate decision)."""

    event_type: ClassVar[str] = "tandem.deployment.created"
    deployment: DeploymentPublic
    #: History (``tandem import deployments``): counted at its own times; no service reacts
    #: to it as to a live deployment (no incident, no freeze, no notification).
    imported: bool = False


class DeploymentUpdated(EventData):
    """Fields of a deployment changed; ``changes`` maps each field to ``[old, new]``."""

    event_type: ClassVar[str] = "tandem.deployment.updated"
    deployment: DeploymentPublic
    changes: dict[str, list[Any]]


class DeploymentTransitioned(EventData):
    """A deployment moved from one state to another."""

    event_type: ClassVar[str] = "tandem.deployment.transitioned"
    deployment: DeploymentPublic
    from_: str = Field(alias="from")
    to: str
    reason: str


class ChangeRequest(BaseModel):
    """The change the gate asks the changes service to create (with ``deployment_id``)."""

    type: Literal["standard", "normal", "emergency"]
    title: str
    description: str
    service: str
    environment: Environment
    planned_start: datetime
    planned_end: datetime
    #: An emergency change's incident (the one the recovering deployment recovers from).
    incident_id: uuid.UUID | None = None


class DeploymentGateDecided(EventData):
    """The gate decided (or re-decided) whether a deployment may go."""

    event_type: ClassVar[str] = "tandem.deployment.gate_decided"
    deployment: DeploymentPublic
    gate: GatePublic
    change_request: ChangeRequest | None


EVENT_DATA = event_catalog(DeploymentCreated, DeploymentUpdated, DeploymentTransitioned,
                           DeploymentGateDecided)
