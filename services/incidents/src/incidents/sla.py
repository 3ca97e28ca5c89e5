"""The SLA check: a background job that records each due breach exactly once.

Every replica runs it. A breach is recorded by inserting its ``sla_breach`` row (primary key
incident + kind) in the same transaction as the incident's update and the event, so a second
replica, or a check repeated after a restart, fails on that key and records nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from incidents import events
from incidents.config import IncidentsSettings
from incidents.incident import SYSTEM_ACTOR, incidents
from incidents.models import Incident, SlaBreach
from incidents.rules.lifecycle import OPEN_STATES
from tandem.app import ServiceRuntime
from tandem.db import Database, utcnow

log = logging.getLogger("incidents.sla")


async def due_breaches(db: Database, now: datetime) -> list[tuple[uuid.UUID, str, datetime]]:
    """(incident id, kind, due time) of every breach due and not yet recorded."""
    open_ = Incident.status.in_(OPEN_STATES)  # type: ignore[attr-defined]
    async with db.sessionmaker() as session:
        response = await session.execute(select(Incident.id, Incident.response_due_at).where(
            open_, Incident.acknowledged_at.is_(None),  # type: ignore[union-attr]
            Incident.response_breached_at.is_(None),  # type: ignore[union-attr]
            Incident.response_due_at <= now))  # type: ignore[operator]
        resolution = await session.execute(select(Incident.id, Incident.resolution_due_at).where(
            open_, Incident.resolution_breached_at.is_(None),  # type: ignore[union-attr]
            Incident.resolution_paused_at.is_(None),  # type: ignore[union-attr]
            Incident.resolution_due_at <= now))  # type: ignore[operator]
        return ([(i, "response", d) for i, d in response.all()]
                + [(i, "resolution", d) for i, d in resolution.all()])


async def record_breach(db: Database, incident_id: uuid.UUID, kind: str, due_at: datetime,
                        now: datetime) -> bool:
    """Record one breach and its event; False when another check got there first (or the
    incident met its target meanwhile)."""
    try:
        async with db.transaction() as session:
            # The guard row first: the losing replica stops here, before touching the incident.
            session.add(SlaBreach(incident_id=incident_id, kind=kind, due_at=due_at,
                                  detected_at=now))
            await session.flush()
            incident = await incidents.find(session, incident_id, for_update=True)
            if incident is None or not _still_due(incident, kind, now):
                raise _Gone
            setattr(incident, f"{kind}_breached_at", now)
            await incidents.record(session, incident, events.IncidentSlaBreached,
                                   actor=SYSTEM_ACTOR, now=now,
                                   breach={"kind": kind, "priority": incident.priority,
                                           "due_at": due_at, "detected_at": now})
        return True
    except (IntegrityError, _Gone):
        return False


class _Gone(Exception):
    """The incident met its target (or vanished) since the breach was found."""


def _still_due(incident: Incident, kind: str, now: datetime) -> bool:
    due = getattr(incident, f"{kind}_due_at")
    if kind == "resolution" and incident.resolution_paused_at is not None:
        return False  # paused: the due time moves on when its clock resumes
    return (incident.status in OPEN_STATES and due is not None and due <= now
            and (kind == "resolution" or incident.acknowledged_at is None))


async def check_once(db: Database, now: datetime | None = None) -> int:
    """Record every due breach; returns how many this call recorded. ``db`` is the service's
    (its outbox topic set)."""
    recorded = 0
    now = now or utcnow()
    for incident_id, kind, due_at in await due_breaches(db, now):
        try:
            recorded += await record_breach(db, incident_id, kind, due_at, now)
        except OperationalError as exc:
            # A busy database (SQLite's writer lock): the next check retries.
            log.info("SLA breach of %s not recorded yet: %s", incident_id, exc)
    return recorded


async def sla_check_job(rt: ServiceRuntime) -> None:
    """The job for ``ServiceSpec.jobs``: check every ``sla_check_interval_s`` seconds."""
    settings = rt.settings
    assert isinstance(settings, IncidentsSettings)
    while True:
        try:
            await check_once(rt.db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("SLA check failed, retrying: %s", exc)
        await asyncio.sleep(settings.sla_check_interval_s)
