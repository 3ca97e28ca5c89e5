"""History in: ``POST /api/v1/imports/deployments``, a batch of past deployments
(``tandem import deployments FILE`` sends a file in batches), so DORA means something on day
one.

Each record is a deployment that already happened, kept at its own times (started, finished,
its commits' times) and written as :func:`deployments.lifecycle.record_reported` writes it: in
its final state, with its DORA record, as one ``tandem.deployment.created`` whose
``data.imported`` is true. No gate is asked and no transition is published, so nothing reacts
to a 60-day-old failure as to a live one: the incidents service opens no incident for it, the
changes service moves no change, the notifier tells nobody; DORA counts it at its times.

Idempotent by ``external_id`` (``import:<the record's id>``): a record already imported is
skipped. A bad record is rejected with its line and the rest of the batch is imported.
"""

from __future__ import annotations

from datetime import UTC
from typing import Literal

from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from deployments.lifecycle import Reported, record_reported
from deployments.models import Commit, Deployment, Environment
from tandem.app import Session
from tandem.auth import Manager
from tandem.imports import (
    ImportSummary,
    import_batch,
    imported_id,
    not_yet_imported,
    validate_lines,
)
from tandem.vocabulary import NAME_PATTERN

router = APIRouter(prefix="/api/v1/imports", tags=["history"])


class PastDeployment(BaseModel):
    """One deployment of the past, as a history file's line gives it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    external_id: str = Field(min_length=1, max_length=255,
                             description="Its id where it came from; importing it again "
                                         "skips it.")
    service: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    environment: Environment = Environment.production
    software_version: str = Field(alias="version", min_length=1, max_length=100)
    status: Literal["succeeded", "failed", "rolled_back", "canceled"]
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime = Field(description="When it ended (a rolled back one: when "
                                                   "it went live).")
    rolled_back_at: AwareDatetime | None = None
    commits: list[Commit] = Field(default_factory=list, max_length=1000)
    artifact: str | None = Field(default=None, max_length=500)
    ref: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _ordered(self) -> PastDeployment:
        if self.started_at is not None and self.started_at > self.finished_at:
            raise ValueError("started_at is after finished_at")
        if self.rolled_back_at is not None and (
                self.status != "rolled_back" or self.rolled_back_at < self.finished_at):
            raise ValueError("rolled_back_at is for a rolled back deployment, after finished_at")
        return self


#: A record of the file, for the API's examples.
RECORD_EXAMPLE: dict[str, object] = {
    "external_id": "gha-8412377",
    "service": "checkout",
    "version": "1.4.0",
    "status": "succeeded",
    "finished_at": "2026-03-01T10:42:00Z",
}


DeploymentBatch = import_batch("past deployment", RECORD_EXAMPLE)


@router.post("/deployments", response_model=ImportSummary)
async def import_deployments(batch: DeploymentBatch, session: Session,
                             actor: Manager) -> ImportSummary:
    """Import past deployments (manager): ``imported``, ``skipped`` (already there) and
    ``rejected`` (with each line and why); one transaction for the batch."""
    valid, rejected = validate_lines(batch, PastDeployment)
    fresh = await not_yet_imported(session, Deployment.external_id, valid)
    reports: list[Reported] = []
    for record in fresh:
        reports.append(Reported(
            service=record.service, environment=record.environment.value,
            software_version=record.software_version, status=record.status,
            started_at=record.started_at, finished_at=record.finished_at,
            rolled_back_at=record.rolled_back_at,
            commits=[{"sha": c.sha, "committed_at": c.committed_at.astimezone(UTC).isoformat()}
                     for c in record.commits],
            external_id=imported_id(record.external_id), artifact=record.artifact, ref=record.ref))
    await record_reported(session, reports, actor=actor.sub, imported=True,
                          origin=f"imported by {actor.sub}"[:200])
    return ImportSummary(imported=len(fresh), skipped=len(valid) - len(fresh), rejected=rejected)
