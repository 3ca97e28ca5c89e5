"""The events the changes service publishes on ``tandem.changes``: each type's ``data`` model.

Every event is written by ``Aggregate.record`` from one of these models, so :data:`EVENT_DATA`
(read by the event documentation generator) is the schema of what is actually published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from changes.schemas import (
    ApprovalPublic,
    ChangePublic,
    Conflict,
    FreezePublic,
    StandardChangePublic,
)
from tandem.aggregate import EventData, event_catalog


class ChangeCreated(EventData):
    event_type: ClassVar[str] = "tandem.change.created"
    change: ChangePublic


class ChangeUpdated(EventData):
    event_type: ClassVar[str] = "tandem.change.updated"
    change: ChangePublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class ChangeTransitioned(EventData):
    event_type: ClassVar[str] = "tandem.change.transitioned"
    change: ChangePublic
    from_: str = Field(alias="from")
    to: str
    reason: str
    forced: bool = Field(default=False,
                         description="Scheduled despite the listed conflicts, or implemented "
                                     "outside its planned window, by a manager.")
    window_extended_from: list[datetime] | None = Field(
        default=None, description="The planned window [start, end] before this move extended "
                                  "it to cover now (an emergency change, or a deployment's own "
                                  "change); the change's window_extended_reason says why.")
    conflicts: list[Conflict] = Field(default_factory=list,
                                      description="Conflicts known when it was scheduled.")
    freezes_passed: list[str] = Field(
        default_factory=list,
        description="The incident freezes in force that this emergency change passed, being "
                    "the fix of an open incident of its service (freeze numbers), when it was "
                    "scheduled or implemented.")


class ChangeApprovalRecorded(EventData):
    event_type: ClassVar[str] = "tandem.change.approval_recorded"
    change: ChangePublic
    approval: ApprovalPublic
    decision: Literal["approve", "reject"] = Field(description="The approval's decision.")
    approvals_received: int
    approvals_required: int


class FreezeCreated(EventData):
    event_type: ClassVar[str] = "tandem.freeze.created"
    freeze: FreezePublic


class FreezeTransitioned(EventData):
    event_type: ClassVar[str] = "tandem.freeze.transitioned"
    freeze: FreezePublic
    from_: str = Field(alias="from")
    to: str
    reason: str


class StandardChangeCreated(EventData):
    event_type: ClassVar[str] = "tandem.standard_change.created"
    standard_change: StandardChangePublic


class StandardChangeUpdated(EventData):
    event_type: ClassVar[str] = "tandem.standard_change.updated"
    standard_change: StandardChangePublic
    changes: dict[str, list[Any]] = Field(description="Edited fields: {field: [old, new]}.")


class StandardChangeTransitioned(EventData):
    event_type: ClassVar[str] = "tandem.standard_change.transitioned"
    standard_change: StandardChangePublic
    from_: str = Field(alias="from")
    to: str
    reason: str


EVENT_DATA = event_catalog(ChangeCreated, ChangeUpdated, ChangeTransitioned,
                           ChangeApprovalRecorded, FreezeCreated, FreezeTransitioned,
                           StandardChangeCreated, StandardChangeUpdated,
                           StandardChangeTransitioned)
