"""The events the changes service publishes on ``tandem.changes``: each type's ``data`` model.

The service builds every event's ``data`` from these models, so :data:`EVENT_DATA` (read by
the event documentation generator) is the schema of what is actually published.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from changes.models import ApprovalPublic, ChangePublic, Conflict, FreezePublic


class _Data(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ChangeCreated(_Data):
    change: ChangePublic


class ChangeUpdated(_Data):
    change: ChangePublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class ChangeTransitioned(_Data):
    change: ChangePublic
    from_: str = Field(alias="from")
    to: str
    reason: str
    forced: bool = Field(default=False,
                         description="Scheduled despite the listed conflicts by a manager.")
    conflicts: list[Conflict] = Field(default_factory=list,
                                      description="Conflicts known when it was scheduled.")


class ChangeApprovalRecorded(_Data):
    change: ChangePublic
    approval: ApprovalPublic
    decision: Literal["approve", "reject"] = Field(description="The approval's decision.")
    approvals_received: int
    approvals_required: int


class FreezeCreated(_Data):
    freeze: FreezePublic


class FreezeTransitioned(_Data):
    freeze: FreezePublic
    from_: str = Field(alias="from")
    to: str
    reason: str


EVENT_DATA: dict[str, type[pydantic.BaseModel]] = {
    "tandem.change.created": ChangeCreated,
    "tandem.change.updated": ChangeUpdated,
    "tandem.change.transitioned": ChangeTransitioned,
    "tandem.change.approval_recorded": ChangeApprovalRecorded,
    "tandem.freeze.created": FreezeCreated,
    "tandem.freeze.transitioned": FreezeTransitioned,
}
