"""Post-incident reviews: the ``review`` aggregate and its writes.

A major incident that is resolved gets a review in the same transaction (:func:`open_review`):
owned by its service's operations team, its owner team taking part, due a number of working
days later. It starts with what happened around the incident across the services (the
deployments, changes and freezes this service's projections hold), the cause the incident
holds, and the failure's value-stream times (:mod:`tandem.value_stream`). People add
contributing factors and action items; an action item that names a change closes itself when
a production deployment carrying that change succeeds (:func:`close_actions_fixed_by`), and a
review still open at its due date is breached (:func:`check_due_once`, a periodic job).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events, timeline
from incidents.config import IncidentsSettings
from incidents.errors import ActionNotFound, ChangeUnknown, ReviewCompleted
from incidents.models import (
    ChangeView,
    DeploymentView,
    FreezeView,
    Incident,
    Review,
    ReviewAction,
)
from incidents.projections import FreezeSnapshot, service_named
from incidents.rules.reviews import REVIEW_LIFECYCLE, add_working_days
from incidents.schemas import ActionCreate, ActionPublic, Factor, ReviewPublic
from tandem.aggregate import Aggregate
from tandem.app import ServiceRuntime
from tandem.db import Database, new_id, utcnow
from tandem.value_stream import STAGES, FailureRecord, StateSpan, stage_times

log = logging.getLogger("incidents.reviews")

#: The actor of what the service records by itself (an overdue review).
SYSTEM_ACTOR = "tandem-incidents"
#: How far before the incident the timeline looks (deployments, changes, freezes).
LOOK_BACK = timedelta(hours=24)


def action_public(review: Review, action: ReviewAction) -> ActionPublic:
    return ActionPublic.model_validate({**action.model_dump(),
                                        "number": f"{review.number}-{action.seq}"})


class ReviewAggregate(Aggregate[Review, ReviewPublic]):
    """Reviews on the core; the snapshot carries its action items."""

    async def snapshot(self, session: AsyncSession, row: Review) -> ReviewPublic:
        actions = (await session.scalars(select(ReviewAction).where(
            ReviewAction.review_id == row.id).order_by(ReviewAction.seq))).all()  # type: ignore[arg-type]
        on_time = None if row.completed_at is None else row.completed_at <= row.due_at
        return ReviewPublic.model_validate({
            **row.model_dump(), "completed_on_time": on_time,
            "actions": [action_public(row, a) for a in actions],
            "allowed_transitions": REVIEW_LIFECYCLE.allowed(row.status)})


reviews = ReviewAggregate(Review, name="review", service="incidents", number_prefix="PIR")


# --- what the review starts with ---------------------------------------------------------------


async def incident_history(session: AsyncSession, incident: Incident) -> list[StateSpan]:
    """The statuses the incident went through, from its timeline."""
    spans = [StateSpan("new", incident.reported_at)]
    for row in await timeline.entries(session, incident.id,
                                      type_=events.IncidentTransitioned.event_type):
        spans.append(StateSpan(str(row.data.get("to")), row.time))
    return spans


async def failure_stream(session: AsyncSession, incident: Incident, review: Review | None,
                         teams: tuple[str | None, str | None]) -> list[dict[str, Any]]:
    """The failure's value-stream stages with wait and work, as :mod:`tandem.value_stream`
    splits them (the review stage once the review is completed)."""
    review_history: list[StateSpan] = []
    if review is not None:
        review_history = [StateSpan("open", review.created_at)]
        for row in review_moves(review):
            review_history.append(StateSpan(row[0], row[1]))
    record = FailureRecord(
        id=str(incident.id), service=incident.service, opened_at=incident.reported_at,
        acknowledged_at=incident.acknowledged_at,
        mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at,
        review_done_at=review.completed_at if review is not None else None,
        incident_history=tuple(await incident_history(session, incident)),
        review_history=tuple(review_history))
    stages = {s.name: s for s in STAGES}
    return [{"stage": t.stage, "label": stages[t.stage].label,
             "holder": stages[t.stage].holder,
             "team": teams[0 if stages[t.stage].holder == "owner" else 1],
             "start": t.start.isoformat(), "end": t.end.isoformat(),
             "wait_s": round(t.wait_s, 3), "work_s": round(t.work_s, 3)}
            for t in stage_times(record)]


def review_moves(review: Review) -> list[tuple[str, datetime]]:
    """The review's own moves after ``open``: started, completed."""
    out: list[tuple[str, datetime]] = []
    if review.started_at is not None:
        out.append(("in_progress", review.started_at))
    if review.completed_at is not None:
        out.append(("completed", review.completed_at))
    return out


async def cross_service_timeline(session: AsyncSession, incident: Incident,
                                 ) -> list[dict[str, Any]]:
    """The incident's own moments and the deployments, changes and freezes of its service from
    a day before it was reported until it was resolved, oldest first."""
    start = incident.reported_at - LOOK_BACK
    end = incident.resolved_at or utcnow()
    out: list[dict[str, Any]] = []

    def add(time: datetime | None, kind: str, ref: str, text: str) -> None:
        if time is not None and start <= time <= end + timedelta(seconds=1):
            out.append({"time": time.isoformat(), "kind": kind, "ref": ref, "text": text})

    add(incident.reported_at, "incident", incident.number,
        f"P{incident.priority} incident opened: {incident.title}")
    add(incident.acknowledged_at, "incident", incident.number, "acknowledged")
    add(incident.mitigated_at, "incident", incident.number, "mitigated")
    add(incident.cause_confirmed_at, "incident", incident.number,
        f"cause confirmed by {incident.cause_confirmed_by}")
    add(incident.resolved_at, "incident", incident.number,
        f"resolved ({incident.resolution_code})")
    deployments = (await session.scalars(select(DeploymentView).where(
        DeploymentView.service == incident.service,
        DeploymentView.deployed_at.is_not(None)))).all()  # type: ignore[union-attr]
    for d in deployments:
        add(d.deployed_at, "deployment", d.number,
            f"{d.service} {d.software_version or ''} to {d.environment}: {d.status}".replace(
                "  ", " "))
    changes = (await session.scalars(select(ChangeView).where(
        ChangeView.service == incident.service))).all()
    for c in changes:
        add(c.implemented_at or c.updated_at, "change", c.number,
            f"{c.type} change {c.title!r}: {c.status}")
    freezes = (await session.scalars(select(FreezeView).where(or_(
        FreezeView.incident_id == incident.id, FreezeView.status != "ended",
        FreezeView.starts_at <= end)))).all()
    for f in freezes:
        own = f.incident_id == incident.id
        if f.services and incident.service not in f.services and not own:
            continue
        add(f.starts_at, "freeze", f.number, f"freeze began: {f.reason}")
        if own and f.ended_at is not None:
            # The incident's own freeze ends when the changes service hears it resolved,
            # which may be a while after: it belongs to the story whenever it came.
            out.append({"time": f.ended_at.isoformat(), "kind": "freeze", "ref": f.number,
                        "text": "freeze ended"})
        else:
            add(f.ended_at, "freeze", f.number, "freeze ended")
    return sorted(out, key=lambda e: (e["time"], e["kind"], e["ref"]))


async def refresh_timelines(session: AsyncSession, freeze: FreezeSnapshot, *,
                            actor: str) -> int:
    """Take a freeze heard late into the timelines of the reviews it belongs to (not
    completed: its incident's, and those of the services it covers), each changed one with
    ``tandem.review.timeline_updated``; returns how many changed."""
    clauses = [Review.incident_id == freeze.incident_id] if freeze.incident_id else []
    clauses.append(Review.service.in_(freeze.services) if freeze.services  # type: ignore[attr-defined]
                   else Review.service.is_not(None))  # type: ignore[union-attr]
    found = (await session.scalars(reviews.locked(select(Review).where(
        Review.status != "completed", or_(*clauses)).order_by(Review.id)))).all()
    changed = 0
    for review in found:
        incident = await session.get(Incident, review.incident_id)
        if incident is None:
            continue
        timeline = await cross_service_timeline(session, incident)
        if timeline == review.timeline:
            continue
        review.timeline = timeline
        await reviews.record(session, review, events.ReviewTimelineUpdated, actor=actor)
        changed += 1
    return changed


async def cause_of(session: AsyncSession, incident: Incident) -> dict[str, Any]:
    deployment = (await session.get(DeploymentView, incident.cause_deployment_id)
                  if incident.cause_deployment_id else None)
    change = (await session.get(ChangeView, incident.cause_change_id)
              if incident.cause_change_id else None)
    return {
        "status": incident.cause_status or "unknown",
        "deployment": None if incident.cause_deployment_id is None else {
            "id": str(incident.cause_deployment_id),
            "number": deployment.number if deployment else None,
            "version": deployment.software_version if deployment else None},
        "change": None if incident.cause_change_id is None else {
            "id": str(incident.cause_change_id),
            "number": change.number if change else None,
            "title": change.title if change else None},
        "confirmed_by": incident.cause_confirmed_by,
    }


# --- writes ------------------------------------------------------------------------------------


async def open_review(session: AsyncSession, incident: Incident, *, due_working_days: int,
                      actor: str) -> Review | None:
    """The review of a resolved major incident (read for update), once: a reopened and
    resolved again incident keeps its first review. None when it already has one."""
    existing = (await session.scalars(select(Review).where(
        Review.incident_id == incident.id))).first()
    if existing is not None:
        return None
    now = incident.resolved_at or utcnow()
    service = await service_named(session, incident.service)
    teams = (service.owner_team if service else None,
             service.operations_team if service else None)
    review = await reviews.new(
        session, now=now, incident_id=incident.id, incident_number=incident.number,
        incident_title=incident.title, service=incident.service, priority=incident.priority,
        status="open", owner_team=teams[1] or teams[0], participant_team=teams[0],
        due_at=add_working_days(now, due_working_days),
        timeline=await cross_service_timeline(session, incident),
        cause=await cause_of(session, incident),
        stream=await failure_stream(session, incident, None, teams), factors=[])
    await reviews.record(session, review, events.ReviewCreated, actor=actor, now=now)
    return review


def _check_open(review: Review) -> None:
    if review.status == "completed":
        raise ReviewCompleted(review.number)


async def _start(session: AsyncSession, review: Review, *, actor: str, now: datetime,
                 reason: str) -> None:
    """open -> in_progress: the first contribution (or a person) starts the review."""
    if review.status != "open":
        return
    review.status, review.started_at = "in_progress", now
    await reviews.record(session, review, events.ReviewTransitioned, actor=actor, now=now,
                         from_="open", to="in_progress", reason=reason)


async def add_factor(session: AsyncSession, review: Review, text: str, *,
                     actor: str) -> ReviewPublic:
    _check_open(review)
    now = utcnow()
    await _start(session, review, actor=actor, now=now, reason="first contribution")
    factor = Factor(text=text, added_by=actor, added_at=now)
    review.factors = [*review.factors, factor.model_dump(mode="json")]
    return await reviews.record(session, review, events.ReviewFactorAdded, actor=actor,
                                now=now, factor=factor)


async def _change_named(session: AsyncSession, ref: str) -> ChangeView:
    try:
        clause: Any = ChangeView.id == uuid.UUID(ref)
    except ValueError:
        clause = ChangeView.number == ref.upper()
    change = (await session.scalars(select(ChangeView).where(clause))).first()
    if change is None:
        raise ChangeUnknown(ref)
    return change


async def add_action(session: AsyncSession, review: Review, body: ActionCreate, *,
                     actor: str) -> ActionPublic:
    _check_open(review)
    change = await _change_named(session, body.change) if body.change else None
    now = utcnow()
    await _start(session, review, actor=actor, now=now, reason="first contribution")
    seq = (await session.scalar(select(func.coalesce(func.max(ReviewAction.seq), 0)).where(
        ReviewAction.review_id == review.id)) or 0) + 1
    action = ReviewAction(
        id=new_id(), review_id=review.id, seq=seq, title=body.title,
        team=body.team or review.participant_team or review.owner_team,
        change_id=change.id if change else None,
        change_number=change.number if change else None, status="open", created_by=actor,
        created_at=now)
    session.add(action)
    await session.flush()
    shown = action_public(review, action)
    await reviews.record(session, review, events.ReviewActionAdded, actor=actor, now=now,
                         action=shown)
    return shown


async def action_of(session: AsyncSession, review: Review, ref: str) -> ReviewAction:
    seq = ref.rsplit("-", 1)[-1]
    if not seq.isdigit() or len(seq) > 9:
        raise ActionNotFound(review.number, ref)
    action = (await session.scalars(select(ReviewAction).where(
        ReviewAction.review_id == review.id, ReviewAction.seq == int(seq)))).first()
    if action is None:
        raise ActionNotFound(review.number, ref)
    return action


async def close_action(session: AsyncSession, review: Review, action: ReviewAction, *,
                       actor: str, now: datetime,
                       deployment: DeploymentView | None = None) -> ReviewPublic:
    action.status, action.closed_at, action.closed_by = "closed", now, actor
    if deployment is not None:
        action.closed_by_deployment_id = deployment.id
        action.closed_by_deployment_number = deployment.number
    session.add(action)
    await session.flush()
    return await reviews.record(session, review, events.ReviewActionClosed, actor=actor,
                                now=now, action=action_public(review, action),
                                deployment_id=deployment.id if deployment else None)


async def move_review(session: AsyncSession, review: Review, to: str, reason: str, *,
                      actor: str) -> ReviewPublic:
    REVIEW_LIFECYCLE.check(review.status, to)
    now = utcnow()
    if to == "in_progress":
        await _start(session, review, actor=actor, now=now, reason=reason)
        return await reviews.snapshot(session, review)
    before = review.status
    review.status, review.completed_at = "completed", now
    review.started_at = review.started_at or now
    incident = await session.get(Incident, review.incident_id)
    if incident is not None:
        review.stream = await failure_stream(session, incident, review,
                                             (review.participant_team, review.owner_team))
    return await reviews.record(session, review, events.ReviewTransitioned, actor=actor,
                                now=now, from_=before, to="completed", reason=reason)


async def close_actions_fixed_by(session: AsyncSession, deployment: DeploymentView, *,
                                 actor: str, at: datetime) -> int:
    """A production deployment carrying a change succeeded: every open action item naming
    that change closes itself, one event each. Returns how many closed."""
    if deployment.change_id is None:
        return 0
    actions = (await session.scalars(select(ReviewAction).where(
        ReviewAction.change_id == deployment.change_id, ReviewAction.status == "open")
        .order_by(ReviewAction.review_id, ReviewAction.seq))).all()  # type: ignore[arg-type]
    closed = 0
    for action in actions:
        review = await reviews.find(session, action.review_id, for_update=True)
        # Read again under the review's lock: another deployment of the change may have
        # closed it meanwhile.
        await session.refresh(action)
        if review is None or action.status != "open":
            continue
        await close_action(session, review, action, actor=actor, now=at, deployment=deployment)
        closed += 1
    return closed


# --- the due-date check -------------------------------------------------------------------------


async def check_due_once(db: Database, now: datetime | None = None) -> int:
    """Record every review past its due date and not completed, once; returns how many."""
    now = now or utcnow()
    async with db.sessionmaker() as session:
        due = list(await session.scalars(select(Review.id).where(
            Review.status != "completed", Review.breached_at.is_(None),  # type: ignore[union-attr]
            Review.due_at <= now)))
    recorded = 0
    for review_id in due:
        try:
            async with db.transaction() as session:
                review = await reviews.find(session, review_id, for_update=True)
                if (review is None or review.breached_at is not None
                        or review.status == "completed"):
                    continue
                review.breached_at = now
                await reviews.record(session, review, events.ReviewDueBreached,
                                     actor=SYSTEM_ACTOR, now=now, due_at=review.due_at,
                                     detected_at=now)
                recorded += 1
        except OperationalError as exc:
            log.info("overdue review %s not recorded yet: %s", review_id, exc)
    return recorded


async def review_check_job(rt: ServiceRuntime) -> None:
    """The job for ``ServiceSpec.jobs``: look for overdue reviews periodically."""
    settings = rt.settings
    assert isinstance(settings, IncidentsSettings)
    while True:
        try:
            await check_due_once(rt.db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("review check failed, retrying: %s", exc)
        await asyncio.sleep(settings.review_check_interval_s)
