"""Incident rules: priority, the lifecycle, and recording each change with its event."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from tandem.db import utcnow
from tandem.events import new_event
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.problems import not_found
from tandem.settings import PlatformSettings
from tandem.transitions import StateMachine

from incidents.models import Incident, IncidentCreate, IncidentPublic

LIFECYCLE = StateMachine(
    "incident",
    {
        "new": {"acknowledged", "in_progress", "resolved", "canceled"},
        "acknowledged": {"in_progress", "resolved", "canceled"},
        "in_progress": {"on_hold", "resolved", "canceled"},
        "on_hold": {"in_progress", "canceled"},
        "resolved": {"in_progress", "closed"},
        "closed": set(),
        "canceled": set(),
    },
)

PRIORITY_MATRIX = {(1, 1): 1, (1, 2): 2, (1, 3): 3, (2, 1): 2, (2, 2): 3, (2, 3): 4,
                   (3, 1): 3, (3, 2): 4, (3, 3): 5}


def derive_priority(impact: int, urgency: int) -> int:
    return PRIORITY_MATRIX[(impact, urgency)]


def public(incident: Incident) -> IncidentPublic:
    return IncidentPublic.model_validate(
        {**incident.model_dump(), "allowed_transitions": LIFECYCLE.allowed(incident.status)}
    )


def _emit(session: AsyncSession, platform: PlatformSettings, incident: Incident, verb: str,
          actor: str, **facts: Any) -> None:
    event = new_event(
        service="incidents", type=f"tandem.incident.{verb}", subject=incident.id,
        sequence=incident.version, actor=actor,
        data={"incident": public(incident).model_dump(mode="json"), **facts},
    )
    add_event(session, topic=platform.topic("incidents"), event=event)


async def create_incident(session: AsyncSession, platform: PlatformSettings, body: IncidentCreate,
                          *, actor: str, cause_deployment_id: uuid.UUID | None = None) -> Incident:
    priority = derive_priority(body.impact, body.urgency)
    incident = Incident(
        number=await next_number(session, "INC"), **body.model_dump(mode="json"),
        priority=priority, major=priority <= 2, status="new",
        cause_deployment_id=cause_deployment_id,
    )
    session.add(incident)
    _emit(session, platform, incident, "created", actor)
    return incident


async def get_incident(session: AsyncSession, ref: str) -> Incident:
    try:
        clause = Incident.id == uuid.UUID(ref)
    except ValueError:
        clause = Incident.number == ref.upper()
    incident = (await session.scalars(select(Incident).where(clause))).first()
    if incident is None:
        raise not_found("incident", ref)
    return incident


async def transition(session: AsyncSession, platform: PlatformSettings, incident: Incident,
                     to: str, reason: str, *, actor: str) -> Incident:
    LIFECYCLE.check(incident.status, to)
    before = incident.status
    incident.status = to
    incident.version += 1
    incident.updated_at = utcnow()
    _emit(session, platform, incident, "transitioned", actor, **{"from": before, "to": to,
                                                                  "reason": reason})
    return incident
