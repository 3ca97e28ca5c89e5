"""Freeze windows (aggregate ``freeze``): manual freezes, the freeze an open major incident puts
on its service (S4), ending one early, and the clock that moves them at their times. The rules
are in :mod:`changes.rules.freezes`."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import cast

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.config import ChangesSettings
from changes.events import FreezeCreated, FreezeTransitioned
from changes.incidents import IncidentSnapshot
from changes.models import Freeze
from changes.rules.freezes import (
    FREEZE_API_MOVES,
    check_freeze_window,
    early_end_at,
    freeze_covers,
    freeze_in_force,
    freeze_status_at,
)
from changes.schemas import FreezeCreate, FreezePublic
from tandem.aggregate import Aggregate
from tandem.app import ServiceRuntime
from tandem.db import utcnow

log = logging.getLogger("changes")

#: The actor of moves the service makes by itself (the freeze clock).
SYSTEM_ACTOR = "tandem-changes"


def freeze_public(freeze: Freeze) -> FreezePublic:
    """The freeze as the API returns it."""
    return FreezePublic.model_validate({
        **freeze.model_dump(),
        "allowed_transitions": FREEZE_API_MOVES.allowed(freeze.status),
    })


class FreezeAggregate(Aggregate[Freeze, FreezePublic]):
    async def snapshot(self, session: AsyncSession, row: Freeze) -> FreezePublic:
        return freeze_public(row)


freeze_windows = FreezeAggregate(Freeze, name="freeze", service="changes", number_prefix="FRZ")


async def create(session: AsyncSession, body: FreezeCreate, *, actor: str) -> FreezePublic:
    """A manual freeze of some services (or all); active at once if it has started."""
    now = utcnow()
    check_freeze_window(body.starts_at, body.ends_at, now)
    freeze = await freeze_windows.new(
        session, services=sorted(set(body.services)),
        environments=sorted({e.value for e in body.environments}), starts_at=body.starts_at,
        ends_at=body.ends_at, status=freeze_status_at(body.starts_at, body.ends_at, now),
        source="manual", reason=body.reason, created_by=actor, now=now)
    return await freeze_windows.record(session, freeze, FreezeCreated, actor=actor, now=now)


async def freeze_for_incident(session: AsyncSession, incident: IncidentSnapshot, *,
                              actor: str) -> FreezePublic:
    """S4: the freeze an open P1/P2 incident puts on its service; it has no end until the
    incident is over."""
    now = utcnow()
    freeze = await freeze_windows.new(
        session, services=[incident.service], environments=[incident.environment],
        starts_at=now, ends_at=None, status="active",
        source="incident", incident_id=incident.id,
        reason=f"open P{incident.priority} incident {incident.number or incident.id} in "
               f"{incident.environment}",
        created_by=actor, now=now)
    return await freeze_windows.record(session, freeze, FreezeCreated, actor=actor, now=now)


async def freeze_of_incident(session: AsyncSession, incident_id: uuid.UUID) -> Freeze | None:
    """The freeze ``incident_id`` put on its service, if any, locked for a write."""
    return (await session.scalars(
        freeze_windows.locked(select(Freeze).where(Freeze.incident_id == incident_id)))).first()


async def end(session: AsyncSession, freeze: Freeze, *, reason: str, actor: str) -> FreezePublic:
    """End a freeze now (early, or when its incident is over); the caller checked the move."""
    now = utcnow()
    before = freeze.status
    freeze.status, freeze.ended_at = "ended", now
    freeze.ends_at = early_end_at(freeze.starts_at, freeze.ends_at, now)
    return await freeze_windows.record(session, freeze, FreezeTransitioned, actor=actor, now=now,
                                from_=before, to="ended", reason=reason)


async def active_freezes(session: AsyncSession, service: str, environment: str | None = None,
                         now: datetime | None = None) -> list[Freeze]:
    """The freezes covering ``service`` (in ``environment``, when given) that hold now."""
    now = now or utcnow()
    rows = await session.scalars(
        select(Freeze).where(Freeze.status != "ended", Freeze.starts_at <= now)
        .execution_options(populate_existing=True))
    return [f for f in rows
            if freeze_in_force(f.status, f.starts_at, f.ends_at, now)
            and freeze_covers(f.services, service, f.environments, environment)]


async def advance(session: AsyncSession, now: datetime | None = None) -> int:
    """The freeze clock's tick: move freezes whose time has come; returns how many moved."""
    now = now or utcnow()
    # The locking policy with SKIP LOCKED (PostgreSQL): a freeze a writer holds (ending it
    # early) is left to the next tick, which sees what that writer committed.
    stmt = (select(Freeze).where(Freeze.status != "ended", or_(
        and_(Freeze.status == "scheduled", Freeze.starts_at <= now),
        and_(Freeze.ends_at.is_not(None), Freeze.ends_at <= now)))  # type: ignore[union-attr, operator]
        .with_for_update(skip_locked=True).execution_options(populate_existing=True))
    moved = 0
    for freeze in (await session.scalars(stmt)).all():
        target = freeze_status_at(freeze.starts_at, freeze.ends_at, now)
        if target == freeze.status:
            continue
        before = freeze.status
        if target == "ended":
            freeze.ended_at = now
        freeze.status = target
        reason = "its window " + ("ended" if target == "ended" else "started")
        await freeze_windows.record(session, freeze, FreezeTransitioned, actor=SYSTEM_ACTOR,
                                    now=now, from_=before, to=target, reason=reason)
        moved += 1
    return moved


async def freeze_clock(runtime: ServiceRuntime) -> None:
    """The job moving freezes scheduled -> active -> ended at their times, with events."""
    settings = cast(ChangesSettings, runtime.settings)
    while True:
        try:
            async with runtime.db.transaction() as session:
                await advance(session)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("freeze clock failed, retrying: %s", exc)
        await asyncio.sleep(settings.freeze_clock_interval_s)
