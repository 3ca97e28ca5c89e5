"""The ``data`` of every event the deployments service publishes, as pydantic models.

``EVENT_DATA`` feeds the generated event documentation; the service builds every event's
``data`` through these models, so the documented schema and the published bytes agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deployments.models import DeploymentPublic, Environment, GatePublic


class DeploymentCreatedData(BaseModel):
    """A deployment was recorded (its snapshot already carries the first gate decision)."""

    deployment: DeploymentPublic


class DeploymentUpdatedData(BaseModel):
    """Fields of a deployment changed; ``changes`` maps each field to ``[old, new]``."""

    deployment: DeploymentPublic
    changes: dict[str, list[Any]]


class DeploymentTransitionedData(BaseModel):
    """A deployment moved from one state to another."""

    model_config = ConfigDict(populate_by_name=True)

    deployment: DeploymentPublic
    from_: str = Field(alias="from")
    to: str
    reason: str


class ChangeRequest(BaseModel):
    """The change the gate asks the changes service to create (with ``deployment_id``)."""

    type: Literal["standard", "normal"]
    title: str
    description: str
    service: str
    environment: Environment
    planned_start: datetime
    planned_end: datetime


class GateDecidedData(BaseModel):
    """The gate decided (or re-decided) whether a deployment may go."""

    deployment: DeploymentPublic
    gate: GatePublic
    change_request: ChangeRequest | None


EVENT_DATA: dict[str, type[BaseModel]] = {
    "tandem.deployment.created": DeploymentCreatedData,
    "tandem.deployment.updated": DeploymentUpdatedData,
    "tandem.deployment.transitioned": DeploymentTransitionedData,
    "tandem.deployment.gate_decided": GateDecidedData,
}


def event_data(model: BaseModel) -> dict[str, Any]:
    """The JSON ``data`` of an event from its model (``from_`` published as ``from``)."""
    return model.model_dump(mode="json", by_alias=True)
