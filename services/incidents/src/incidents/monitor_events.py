"""Monitor events, accepted and then applied: the queue behind ``POST /v2/enqueue``.

As PagerDuty does, a monitor's event is answered 202 once it is durably recorded: one row in
``monitor_event`` (:func:`record`). The applier (:func:`monitor_applier_job`, a job of the
service) takes the rows in the order they were received, in batches, and applies each batch in
one transaction that also deletes its rows: a crash after the 202 loses nothing (the row is
applied after the restart), and nothing is applied twice (the effects and the deletion commit
together). Appliers of several processes take turns on the incident number lock.

Repeats of an open alert are coalesced: the triggers of one batch for an incident that is
already open add to its ``alert_count`` and leave one ``alert`` note (one ``annotated`` event)
for the batch, not one note and one snapshot event each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from incidents.config import IncidentsSettings
from incidents.incident import incidents, move_incident, open_incident, raise_priority
from incidents.models import (
    OPEN,
    OPEN_FROM_DEPLOYMENT,
    Incident,
    MonitorEventRecord,
)
from incidents.notes import add_note
from incidents.rules.lifecycle import LIFECYCLE, OPEN_STATES, ResolutionCode, Status
from incidents.rules.policy import SEVERITY_IMPACT_URGENCY
from incidents.schemas import Environment, IncidentCreate, Source, TransitionRequest
from tandem.app import ServiceRuntime
from tandem.db import Database, Prepared, utcnow
from tandem.tables import NumberSequence

log = logging.getLogger("incidents.monitor_events")

_queue = MonitorEventRecord.__table__  # type: ignore[attr-defined]
#: An accepted event's one row (the whole of a ``/v2/enqueue`` request's database work).
_ACCEPT = Prepared(insert(_queue))
#: The signal (:meth:`tandem.db.Database.signal`) that wakes the applier after a commit.
WAKE = "monitor_event"


async def record(db: Database, *, service: str, environment: str, action: str,
                 dedup_key: str, actor: str, alert: dict[str, Any] | None) -> None:
    """Record an accepted monitor event: one insert in a transaction of its own (Core, no
    ORM session: it is the whole request); the applier is woken once it is committed."""
    async with db.begin() as connection:
        await _ACCEPT.run(connection, {
            "received_at": utcnow(), "service": service, "environment": environment,
            "action": action, "dedup_key": dedup_key, "actor": actor, "alert": alert})
    db.signal(WAKE).set()


async def monitor_applier_job(rt: ServiceRuntime) -> None:
    """The job for ``ServiceSpec.jobs``: apply accepted monitor events as they arrive (woken
    after each accepting commit; every ``monitor_apply_interval_s`` for other processes')."""
    settings = rt.settings
    assert isinstance(settings, IncidentsSettings)
    if not settings.monitor_applier:
        return
    wake = rt.db.signal(WAKE)
    # Rows to take next: what the budget let the last transaction apply, with room to grow
    # (a storm of new keys applies a few a transaction, of repeats hundreds), so a short
    # transaction does not read hundreds of rows to apply three.
    take = settings.monitor_apply_batch
    while True:
        wake.clear()
        try:
            applied, more = await apply_pending(rt.db, settings, limit=take)
            if applied:
                take = min(settings.monitor_apply_batch, max(16, 2 * applied))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away or busy: the rows wait for the next try
            log.warning("applying monitor events failed, retrying: %s", exc)
            more = False
        if more:
            await asyncio.sleep(0)  # requests first (their inserts wait for the write lock)
            continue
        # All applied: the next batch waits for the linger too, so in a storm of repeats each
        # open alert gets one count and one note per linger, not one per short transaction.
        try:
            await asyncio.wait_for(wake.wait(), settings.monitor_apply_interval_s)
        except TimeoutError:
            continue
        # Woken by a new event: let the next ones of a storm join its batch.
        await asyncio.sleep(settings.monitor_apply_linger_s)


async def apply_pending(db: Database, settings: IncidentsSettings, *,
                        limit: int | None = None) -> tuple[int, bool]:
    """Apply the oldest accepted monitor events (up to ``limit``, by default
    ``monitor_apply_batch``) in one transaction; returns how many were applied and whether
    more may be waiting (the limit or the time budget was reached). An event whose batch
    fails is applied alone, and one that fails alone is kept with its error and skipped."""
    limit = limit or settings.monitor_apply_batch
    rows: Sequence[Any] = ()
    try:
        async with db.transaction() as session:
            rows = await _take(session, limit)
            done = await apply_batch(session, settings, rows,
                                     budget_s=settings.monitor_apply_budget_s)
            await _forget(session, [r.seq for r in rows[:done]])
        return done, done < len(rows) or len(rows) >= limit
    except (OperationalError, InterfaceError):
        raise  # the database away or busy: nothing is wrong with the events
    except Exception as exc:
        if not rows:
            raise
        log.warning("a batch of %d monitor events failed (%s); applying them one by one",
                    len(rows), exc)
    for row in rows:
        try:
            async with db.transaction() as session:
                await lock_numbers(session)
                await apply_batch(session, settings, [row])
                await _forget(session, [row.seq])
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.error("monitor event %s (%s %s of %s) cannot be applied: %s", row.seq,
                      row.action, row.dedup_key, row.service, exc)
            async with db.transaction() as session:
                await session.execute(update(_queue).where(_queue.c.seq == row.seq).values(
                    failed_at=utcnow(), error=f"{type(exc).__name__}: {exc}"[:10000]))
    return len(rows), len(rows) >= limit


async def _take(session: AsyncSession, limit: int) -> Sequence[Any]:
    # The number lock first: appliers of several processes (and manual creates) take turns,
    # so two never apply the same rows nor race on one dedup key.
    await lock_numbers(session)
    return (await session.execute(
        select(_queue).where(_queue.c.failed_at.is_(None)).order_by(_queue.c.seq)
        .limit(limit))).all()


async def _forget(session: AsyncSession, seqs: list[int]) -> None:
    if seqs:
        await session.execute(delete(_queue).where(_queue.c.seq.in_(seqs)))


@dataclass
class _Repeats:
    """Triggers of one batch for an incident already open: coalesced into one note."""

    incident: Incident
    count: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    actor: str = ""


async def apply_batch(session: AsyncSession, settings: IncidentsSettings,
                      rows: Sequence[Any], *, budget_s: float | None = None) -> int:
    """Apply ``rows`` (queue rows, in order) in the caller's transaction (the number lock
    held): a trigger opens an incident or counts on the open one with its key; acknowledge
    and resolve move the open incident with their key. Stops after ``budget_s`` seconds of
    work (SQLite's one writer lock is held meanwhile, and requests wait for it to record
    their events); returns how many rows, from the first, were applied.

    Nothing the batch reads depends on what it has written but not flushed (the open
    incidents of its keys it keeps itself; the projections and the policy it does not
    write), so an incident's rows are flushed once, after it is opened, not before each
    read."""
    with session.no_autoflush:
        return await _apply_rows(session, settings, rows, budget_s)


async def _apply_rows(session: AsyncSession, settings: IncidentsSettings,
                      rows: Sequence[Any], budget_s: float | None) -> int:
    repeats: dict[Any, _Repeats] = {}
    # The open incidents of the batch's keys, read for update with one statement.
    opened = await open_incidents_with_keys(session, {(r.service, r.dedup_key) for r in rows})
    deadline = time.monotonic() + budget_s if budget_s is not None else None
    done = 0
    for row in rows:
        if deadline is not None and done and time.monotonic() > deadline:
            break
        done += 1
        key = (row.service, row.dedup_key)
        incident = opened.get(key)
        if incident is not None and incident.status not in OPEN_STATES:
            # Moved out of the open states earlier in this batch: no incident with the key is
            # open now (one at most is, the unique index says; a new one is opened after the
            # old one's update, which the flush writes before inserts).
            incident = None
        if row.action == "trigger":
            if incident is None:
                opened[key] = await _open(session, settings, row)
                # Its rows written now, inside the time budget: a batch's worth flushed at the
                # commit would hold the loop (and SQLite's write lock) past it.
                await session.flush()
                continue
            opened[key] = incident
            seen = repeats.setdefault(incident.id, _Repeats(incident))
            seen.count += 1
            seen.last = row.alert or {}
            seen.actor = row.actor
            continue
        if incident is None:
            continue  # nothing open with that key: PagerDuty ignores it too
        if incident.id in repeats:  # the counted repeats come before the move
            await _note_repeats(session, repeats.pop(incident.id))
        to = "acknowledged" if row.action == "acknowledge" else "resolved"
        if to == "resolved" and incident.status == "on_hold":
            # The condition cleared: whatever the incident waited for no longer matters.
            await monitor_move(session, settings, incident, "in_progress", row.action,
                               row.actor)
        # An incident someone already works on stays where it is on a late acknowledge.
        if LIFECYCLE.can(incident.status, to):
            await monitor_move(session, settings, incident, to, row.action, row.actor)
    for seen in repeats.values():
        await _note_repeats(session, seen)
    return done


async def _note_repeats(session: AsyncSession, seen: _Repeats) -> None:
    incident, alert = seen.incident, seen.last
    incident.alert_count += seen.count
    times = f" ({seen.count} alerts)" if seen.count > 1 else ""
    await add_note(session, incident,
                   f"Alert again from {alert.get('source')}: {alert.get('summary')}{times}"[:10000],
                   actor=seen.actor, kind="alert", details={**alert, "count": seen.count})


def incident_body(service: str, environment: str, alert: dict[str, Any]) -> IncidentCreate:
    """The incident a trigger opens (``ValidationError`` if the alert cannot make one: the
    request path builds it too, so such an event is refused with a 400, never queued)."""
    impact, urgency = SEVERITY_IMPACT_URGENCY[alert["severity"]]
    return IncidentCreate(
        title=str(alert["summary"]).strip()[:200] or str(alert["source"])[:200],
        description=_describe_alert(alert), service=service,
        environment=Environment(environment), impact=impact, urgency=urgency,
    )


async def _open(session: AsyncSession, settings: IncidentsSettings, row: Any) -> Incident:
    alert = row.alert or {}
    body = incident_body(row.service, row.environment, alert)
    incident, _ = await open_incident(session, settings, body, actor=row.actor,
                                      source=Source.monitor, dedup_key=row.dedup_key)
    await add_note(session, incident,
                   f"Alert from {alert['source']}: {alert['summary']}"[:10000],
                   actor=row.actor, kind="alert", details=alert)
    await raise_failed_deployments(session, settings, incident, actor=row.actor)
    return incident


async def open_incidents_with_keys(session: AsyncSession, keys: set[tuple[str, str]],
                                   ) -> dict[tuple[str, str], Incident]:
    """The open incidents with these (service, dedup key) pairs, read for update."""
    if not keys:
        return {}
    found = (await session.scalars(incidents.locked(select(Incident).where(
        Incident.service.in_({s for s, _ in keys}),  # type: ignore[attr-defined]
        Incident.dedup_key.in_({k for _, k in keys}),  # type: ignore[union-attr]
        text(OPEN),  # with the keys, the partial index's condition: a lookup per key
    )))).all()
    return {key: i for i in found if (key := (i.service, i.dedup_key or "")) in keys}


#: The open incidents of failed deployments of a service and environment less urgent than a
#: priority, read for update (built once: each incident a monitor opens asks it). Not read
#: afresh: one this transaction already holds (locked when first read) may carry a raise its
#: batch has not flushed yet, which a fresh read would undo.
_FAILED_DEPLOYMENTS_BELOW = select(Incident).with_for_update().where(
    Incident.service == bindparam("service"), Incident.environment == bindparam("environment"),
    text(OPEN_FROM_DEPLOYMENT),  # the partial index's own condition: it is used
    Incident.priority > bindparam("priority")).order_by(Incident.id)


async def raise_failed_deployments(session: AsyncSession, settings: IncidentsSettings,
                                   alert: Incident, *, actor: str) -> None:
    """A monitor sees the same service failing while a failed deployment's incident (S2) of
    it is open: that incident is raised to the monitor's priority (a P3 by tier becomes major
    when the monitor says users are hit), with a note naming the alert's incident."""
    rows = (await session.scalars(_FAILED_DEPLOYMENTS_BELOW, {
        "service": alert.service, "environment": alert.environment,
        "priority": alert.priority})).all()
    for failed in rows:
        before = failed.priority
        if await raise_priority(session, settings, failed, alert.priority, actor=actor):
            await add_note(session, failed, f"Raised from P{before} to P{alert.priority}: "
                           f"a monitor reports {alert.service} failing ({alert.number}).",
                           actor=actor, details={"incident_id": str(alert.id)})


async def lock_numbers(session: AsyncSession) -> None:
    """Take the incident number counter's row lock (SQLite: the write lock) first thing."""
    await session.execute(update(NumberSequence)
                          .where(NumberSequence.prefix == incidents.number_prefix)
                          .values(last_value=NumberSequence.last_value))


def _describe_alert(alert: dict[str, Any]) -> str:
    lines = [str(alert["summary"]), "", f"source: {alert['source']}",
             f"severity: {alert['severity']}"]
    for key in ("component", "group", "class", "client", "client_url"):
        if key in alert:
            lines.append(f"{key}: {alert[key]}")
    if "custom_details" in alert:
        lines.append("details: " + orjson.dumps(alert["custom_details"]).decode())
    return "\n".join(lines)[:10000]


async def monitor_move(session: AsyncSession, settings: IncidentsSettings,
                       incident: Incident, to: str, action: str, actor: str) -> None:
    """Move the monitor's incident (read for update) as its acknowledge or resolve asks."""
    body = TransitionRequest(
        to=Status(to), reason=f"{action} from monitor",
        resolution_code=ResolutionCode.resolved_by_caller if to == "resolved" else None,
        resolution_notes="The monitor reported the condition cleared." if to == "resolved"
        else None,
    )
    await move_incident(session, incident, body, actor=actor,
                        review_due_working_days=settings.review_due_working_days)
