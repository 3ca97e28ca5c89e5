"""The service's event history on request: ``POST /api/v1/events/replay`` publishes its retained
outbox again (contract section 10, ``tandem events replay``); consumers skip what they applied.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tandem.auth import Manager
from tandem.inputs import Moment

router = APIRouter(prefix="/api/v1/events", tags=["event history"])


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Moment | None = Field(
        default=None, description="Only events recorded at or after this time (RFC 3339); "
                                  "unset, the whole retained history.",
        examples=["2026-11-30T00:00:00Z"])


class ReplayAnswer(BaseModel):
    topic: str = Field(description="The topic the events go to again.")
    republished: int = Field(description="How many retained events will be published again.")
    since: datetime | None


@router.post("/replay", status_code=202, response_model=ReplayAnswer)
async def replay_history(body: ReplayRequest, request: Request, _: Manager) -> ReplayAnswer:
    """Publish the service's retained events again, in their order (202: the relay sends them
    in the background)."""
    relay = request.app.state.runtime.relay
    count = await relay.republish(since=body.since)
    return ReplayAnswer(topic=relay.topic, republished=count, since=body.since)
