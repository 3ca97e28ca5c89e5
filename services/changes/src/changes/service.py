"""Change and freeze operations: each state change written with its event, in the caller's
transaction. The rules themselves are pure functions in :mod:`changes.policy`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from changes import policy
from changes.config import ChangesSettings
from changes.events import EVENT_DATA
from changes.models import (
    ApprovalPublic,
    ApprovalRequest,
    Change,
    ChangeApproval,
    ChangeCreate,
    ChangePublic,
    ChangeTransitionRequest,
    ChangeUpdate,
    Conflict,
    Freeze,
    FreezeCreate,
    FreezePublic,
    IncidentView,
    ServiceScore,
    SuccessScorePublic,
)
from tandem.db import utcnow
from tandem.events import new_event
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.problems import Problem, not_found
from tandem.settings import PlatformSettings

log = logging.getLogger("changes")

#: The actor of moves the service makes by itself (the freeze clock).
SYSTEM_ACTOR = "tandem-changes"
OPEN_INCIDENT_EXCLUDED = ("resolved", "closed", "canceled")


@dataclass(frozen=True)
class Context:
    """What every operation needs: where events go and the service's policy settings."""

    platform: PlatformSettings
    settings: ChangesSettings

    @property
    def topic(self) -> str:
        return self.platform.topic("changes")


def _ref_clause(model: type[Change] | type[Freeze], ref: str) -> Any:
    try:
        return model.id == uuid.UUID(ref)
    except ValueError:
        return model.number == ref.upper()


def _emit(session: AsyncSession, ctx: Context, *, type_: str, subject: uuid.UUID, version: int,
          actor: str, **data: Any) -> None:
    """Publish ``type_`` with ``data`` built through its :data:`EVENT_DATA` model."""
    body = EVENT_DATA[type_].model_validate(data)
    event = new_event(service="changes", type=type_, subject=subject, sequence=version,
                      actor=actor, data=body.model_dump(mode="json", by_alias=True))
    add_event(session, topic=ctx.topic, event=event)


def _touch(row: Change | Freeze) -> None:
    row.version += 1
    row.updated_at = utcnow()


# --- change snapshots ---------------------------------------------------------------------


def required_for(ctx: Context, change: Change) -> int:
    return policy.approvals_required(change.type, ctx.settings.required_approvals,
                                     ctx.settings.emergency_required_approvals)


async def public_changes(session: AsyncSession, ctx: Context,
                         changes: Sequence[Change]) -> list[ChangePublic]:
    """API snapshots of ``changes`` (their active approvals loaded in one query)."""
    by_change: dict[uuid.UUID, list[ChangeApproval]] = {c.id: [] for c in changes}
    if changes:
        rows = await session.scalars(
            select(ChangeApproval)
            .where(ChangeApproval.change_id.in_(list(by_change)),  # type: ignore[attr-defined]
                   ChangeApproval.active.is_(True))  # type: ignore[attr-defined]
            .order_by(ChangeApproval.created_at))
        for row in rows:
            by_change[row.change_id].append(row)
    out = []
    for change in changes:
        approvals = by_change[change.id]
        out.append(ChangePublic.model_validate({
            **change.model_dump(),
            "approvals": [ApprovalPublic.model_validate(a) for a in approvals],
            "approvals_required": required_for(ctx, change),
            "approvals_received": sum(a.decision == "approve" for a in approvals),
            "allowed_transitions": policy.PATHS[change.type].allowed(change.status),
        }))
    return out


async def public_change(session: AsyncSession, ctx: Context, change: Change) -> ChangePublic:
    return (await public_changes(session, ctx, [change]))[0]


async def _emit_change(session: AsyncSession, ctx: Context, change: Change, verb: str,
                       actor: str, **facts: Any) -> ChangePublic:
    await session.flush()
    snapshot = await public_change(session, ctx, change)
    _emit(session, ctx, type_=f"tandem.change.{verb}", subject=change.id,
          version=change.version, actor=actor, change=snapshot, **facts)
    return snapshot


# --- reading ------------------------------------------------------------------------------


async def get_change(session: AsyncSession, ref: str, *, for_update: bool = False) -> Change:
    """The change by id or number; ``for_update`` locks its row (PostgreSQL) for a write, so
    concurrent writers cannot both take the same next version."""
    stmt = select(Change).where(_ref_clause(Change, ref))
    if for_update:
        stmt = stmt.with_for_update()
    change = (await session.scalars(stmt)).first()
    if change is None:
        raise not_found("change", ref)
    return change


async def get_freeze(session: AsyncSession, ref: str, *, for_update: bool = False) -> Freeze:
    stmt = select(Freeze).where(_ref_clause(Freeze, ref))
    if for_update:
        stmt = stmt.with_for_update()
    freeze = (await session.scalars(stmt)).first()
    if freeze is None:
        raise not_found("freeze", ref)
    return freeze


async def success_score(session: AsyncSession, service: str) -> SuccessScorePublic:
    row = await session.get(ServiceScore, service)
    if row is None:
        return SuccessScorePublic(service=service, score=0, closed_changes=0, caused_incidents=0)
    return SuccessScorePublic(service=service, score=row.score, closed_changes=row.closed_changes,
                              caused_incidents=row.caused_incidents)


async def _adjust_score(session: AsyncSession, service: str, delta: int, *, closed: int = 0,
                        caused: int = 0) -> None:
    row = await session.get(ServiceScore, service)
    if row is None:
        row = ServiceScore(service=service)
        session.add(row)
    row.score += delta
    row.closed_changes += closed
    row.caused_incidents += caused
    row.updated_at = utcnow()


# --- risk ---------------------------------------------------------------------------------


async def _assess_risk(session: AsyncSession, ctx: Context, change: Change) -> None:
    """Set ``risk`` by the ordered rules unless the requester chose it."""
    if change.risk_set_by_requester:
        return
    open_rows = (await session.execute(
        select(IncidentView.major).where(
            IncidentView.service == change.service,
            IncidentView.environment == change.environment,
            IncidentView.status.not_in(OPEN_INCIDENT_EXCLUDED)))).all()  # type: ignore[attr-defined]
    window = None
    if change.planned_start is not None and change.planned_end is not None:
        window = (change.planned_end - change.planned_start).total_seconds() / 3600
    facts = policy.RiskFacts(
        type=change.type, environment=change.environment, window_hours=window,
        success_score=(await success_score(session, change.service)).score,
        open_incidents=len(open_rows), open_major_incidents=sum(bool(r[0]) for r in open_rows),
    )
    change.risk, change.risk_rule = policy.assess_risk(ctx.settings.risk_rules,
                                                       ctx.settings.default_risk, facts)


# --- changes ------------------------------------------------------------------------------


async def create_change(session: AsyncSession, ctx: Context, body: ChangeCreate, *, actor: str,
                        deployment_id: uuid.UUID | None = None) -> Change:
    """Record a new change request (status ``new``) and publish ``created``."""
    policy.check_window(body.planned_start, body.planned_end, ctx.settings.max_window_hours)
    if body.incident_id is not None and body.type != "emergency":
        raise Problem(422, "Only an emergency change names the incident it fixes.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "incident_id", "message": "emergency changes only"}])
    change = Change(
        number=await next_number(session, "CHG"),
        type=body.type.value, title=body.title, description=body.description,
        service=body.service, environment=body.environment.value, status="new",
        risk=body.risk or ctx.settings.default_risk,
        risk_rule="set by the requester" if body.risk else None,
        risk_set_by_requester=body.risk is not None,
        planned_start=body.planned_start, planned_end=body.planned_end,
        incident_id=body.incident_id, deployment_id=deployment_id, requested_by=actor,
    )
    await _assess_risk(session, ctx, change)
    session.add(change)
    await _emit_change(session, ctx, change, "created", actor)
    return change


async def update_change(session: AsyncSession, ctx: Context, change: Change, body: ChangeUpdate,
                        *, actor: str) -> Change:
    """Apply a PATCH; publishes ``updated`` with ``{field: [old, new]}`` when anything changed."""
    given = body.model_dump(exclude_unset=True)
    if change.status in policy.FINAL:
        raise Problem(409, f"A {change.status} change cannot be edited.",
                      type_="urn:tandem:problem:final-state", allowed=[])
    for name in ("title", "description", "planned_start", "planned_end", "risk"):
        if name in given and given[name] is None:
            raise Problem(422, f"{name} cannot be cleared.", type_="urn:tandem:problem:validation",
                          errors=[{"field": name, "message": "may not be null"}])
    window_edit = "planned_start" in given or "planned_end" in given
    if window_edit and change.status not in policy.WINDOW_EDITABLE:
        raise Problem(409, f"The planned window of a {change.status} change is fixed; revert it "
                           "to new or cancel it to plan again.",
                      type_="urn:tandem:problem:window-fixed", allowed=[])
    if given.get("incident_id") is not None and change.type != "emergency":
        raise Problem(422, "Only an emergency change names the incident it fixes.",
                      type_="urn:tandem:problem:validation",
                      errors=[{"field": "incident_id", "message": "emergency changes only"}])
    start = given.get("planned_start", change.planned_start)
    end = given.get("planned_end", change.planned_end)
    if window_edit:
        policy.check_window(start, end, ctx.settings.max_window_hours)
    before = (await public_change(session, ctx, change)).model_dump(mode="json")
    for name, value in given.items():
        setattr(change, name, value)
    if "risk" in given:
        change.risk_set_by_requester = True
        change.risk_rule = "set by the requester"
    if window_edit:
        await _assess_risk(session, ctx, change)
    after = (await public_change(session, ctx, change)).model_dump(mode="json")
    diff = {k: [before[k], after[k]] for k in ("title", "description", "planned_start",
                                               "planned_end", "risk", "risk_rule", "incident_id")
            if before[k] != after[k]}
    if not diff:
        return change
    _touch(change)
    await _emit_change(session, ctx, change, "updated", actor, changes=diff)
    return change


async def conflicts_of(session: AsyncSession, change: Change,
                       now: datetime | None = None) -> list[Conflict]:
    """Scheduled or implementing changes of the same service and environment in an overlapping
    window, and active or upcoming freezes covering the service that the window touches (but
    not, for an emergency change, the freeze of the incident it fixes)."""
    if change.planned_start is None or change.planned_end is None:
        return []
    now = now or utcnow()
    start, end = change.planned_start, change.planned_end
    others = await session.scalars(
        select(Change).where(
            Change.service == change.service, Change.environment == change.environment,
            Change.id != change.id, Change.status.in_(policy.OCCUPYING),  # type: ignore[attr-defined]
            Change.planned_start < end, Change.planned_end > start,  # type: ignore[operator]
        ).order_by(Change.planned_start))
    out = [Conflict(kind="change", id=o.id, number=o.number, status=o.status,
                    starts_at=o.planned_start, ends_at=o.planned_end,
                    detail=f"{o.number} is {o.status} for {o.service} in an overlapping window")
           for o in others]
    freezes = await session.scalars(
        select(Freeze).where(Freeze.status != "ended", Freeze.starts_at < end,
                             or_(Freeze.ends_at.is_(None),  # type: ignore[union-attr]
                                 and_(Freeze.ends_at > start,  # type: ignore[operator]
                                      Freeze.ends_at > now)))
        .order_by(Freeze.starts_at))
    out += [Conflict(kind="freeze", id=f.id, number=f.number, status=f.status,
                     starts_at=f.starts_at, ends_at=f.ends_at,
                     detail=f"{f.number} freezes {', '.join(f.services) or 'every service'}: "
                            f"{f.reason}")
            for f in freezes if policy.freeze_covers(f.services, change.service)
            and not policy.freeze_spares(change.type, change.incident_id, f.incident_id)]
    return out


async def active_freezes(session: AsyncSession, service: str,
                         now: datetime | None = None) -> list[Freeze]:
    """The freezes covering ``service`` that hold now."""
    now = now or utcnow()
    rows = await session.scalars(
        select(Freeze).where(Freeze.status != "ended", Freeze.starts_at <= now))
    return [f for f in rows
            if policy.freeze_in_force(f.status, f.starts_at, f.ends_at, now)
            and policy.freeze_covers(f.services, service)]


async def _approvals_received(session: AsyncSession, change: Change) -> int:
    count = await session.scalar(
        select(func.count()).select_from(ChangeApproval).where(
            ChangeApproval.change_id == change.id, ChangeApproval.active.is_(True),  # type: ignore[attr-defined]
            ChangeApproval.decision == "approve"))
    return int(count or 0)


async def _facts_for(session: AsyncSession, ctx: Context, change: Change, to: str, *,
                     force: bool = False, may_force: bool = False,
                     close_code: str | None = None) -> tuple[policy.Move, list[Conflict]]:
    conflicts = await conflicts_of(session, change) if to == "scheduled" else []
    frozen = bool(await active_freezes(session, change.service)) if to == "implement" else False
    move = policy.Move(
        type=change.type, status=change.status, to=to,
        approvals_received=await _approvals_received(session, change),
        approvals_required=required_for(ctx, change), frozen=frozen, conflicts=len(conflicts),
        force=force, may_force=may_force,
        has_window=change.planned_start is not None and change.planned_end is not None,
        close_code=close_code,
    )
    return move, conflicts


async def _apply_move(session: AsyncSession, ctx: Context, change: Change, to: str, *,
                      reason: str, actor: str, conflicts: list[Conflict] | None = None,
                      forced: bool = False, close_code: str | None = None,
                      close_notes: str | None = None) -> None:
    """Write an already checked move and its ``transitioned`` event."""
    before = change.status
    change.status = to
    if to == "new":
        # Revert to new (or a rejection) cancels the approvals gathered so far.
        await session.execute(
            update(ChangeApproval)
            .where(ChangeApproval.change_id == change.id, ChangeApproval.active.is_(True))  # type: ignore[attr-defined]
            .values(active=False))
    if to == "scheduled" and forced:
        change.forced, change.forced_by = True, actor
    if to == "closed":
        change.close_code, change.close_notes, change.closed_at = close_code, close_notes, utcnow()
        await _adjust_score(session, change.service, policy.CLOSE_SCORE[close_code or ""],
                            closed=1)
    _touch(change)
    await _emit_change(session, ctx, change, "transitioned", actor, from_=before, to=to,
                       reason=reason, forced=forced, conflicts=conflicts or [])


async def transition_change(session: AsyncSession, ctx: Context, change: Change,
                            req: ChangeTransitionRequest, *, actor: str,
                            may_force: bool) -> Change:
    """Move ``change`` along its type's path, enforcing approvals, conflicts and freezes."""
    close_code = req.close_code.value if req.close_code else None
    if req.to == "closed" and close_code is None and change.marked_unsuccessful:
        close_code = "unsuccessful"
    move, conflicts = await _facts_for(session, ctx, change, req.to, force=req.force,
                                       may_force=may_force, close_code=close_code)
    policy.check_move(move)
    await _apply_move(session, ctx, change, req.to, reason=req.reason, actor=actor,
                      conflicts=conflicts, forced=req.force and bool(conflicts),
                      close_code=close_code, close_notes=req.close_notes)
    return change


async def record_approval(session: AsyncSession, ctx: Context, change: Change,
                          req: ApprovalRequest, *, actor: str) -> Change:
    """A manager's decision: a rejection sends the change back to new; the approval that
    completes the count authorizes and schedules it (unless conflicts need force)."""
    if change.status not in policy.APPROVABLE or required_for(ctx, change) == 0:
        raise Problem(409, f"A {change.type} change in {change.status} takes no approvals; "
                           "approvals are recorded in assess or authorize.",
                      type_="urn:tandem:problem:not-approvable",
                      allowed=policy.PATHS[change.type].allowed(change.status))
    if actor == change.requested_by:
        raise Problem(403, "A requester cannot approve or reject their own change.",
                      type_="urn:tandem:problem:own-change")
    mine = await session.scalar(
        select(func.count()).select_from(ChangeApproval).where(
            ChangeApproval.change_id == change.id, ChangeApproval.active.is_(True),  # type: ignore[attr-defined]
            ChangeApproval.approver == actor))
    if mine:
        raise Problem(409, f"{actor} has already decided on this change.",
                      type_="urn:tandem:problem:already-decided")
    approval = ChangeApproval(change_id=change.id, approver=actor, decision=req.decision,
                              comment=req.comment)
    session.add(approval)
    _touch(change)
    received = await _approvals_received(session, change)
    required = required_for(ctx, change)
    await _emit_change(session, ctx, change, "approval_recorded", actor,
                       approval=ApprovalPublic.model_validate(approval), decision=req.decision,
                       approvals_received=received, approvals_required=required)
    if req.decision == "reject":
        await _apply_move(session, ctx, change, "new", actor=actor,
                          reason=f"rejected by {actor}" + (f": {req.comment}" if req.comment
                                                           else ""))
        return change
    if received < required:
        return change
    if change.status == "assess":
        await _apply_move(session, ctx, change, "authorize", actor=actor,
                          reason=f"approvals complete ({received} of {required})")
    move, conflicts = await _facts_for(session, ctx, change, "scheduled", force=req.force,
                                       may_force=True)
    try:
        policy.check_move(move)
    except Problem as problem:
        # Authorized but not schedulable yet (no window, or conflicts without force): it waits.
        log.info("change %s authorized, not scheduled: %s", change.number, problem.detail)
        return change
    await _apply_move(session, ctx, change, "scheduled", actor=actor,
                      reason=f"authorized ({received} of {required} approvals)",
                      conflicts=conflicts, forced=req.force and bool(conflicts))
    return change


# --- reactions: incidents and deployments -------------------------------------------------


async def find_change_for(session: AsyncSession, *, change_id: str | None,
                          deployment_id: str | None) -> Change | None:
    """The change named by id, else the one a deployment asked for."""
    if change_id:
        found = await session.get(Change, uuid.UUID(change_id), with_for_update=True)
        if found is not None:
            return found
    if deployment_id:
        return (await session.scalars(
            select(Change).where(Change.deployment_id == uuid.UUID(deployment_id))
            .with_for_update())).first()
    return None


async def record_cause(session: AsyncSession, ctx: Context, change: Change, *,
                       incident_id: str, priority: int | None, actor: str) -> None:
    """A confirmed cause: mark the change and lower its service's success score once."""
    if incident_id in change.caused_incidents:
        return
    before = list(change.caused_incidents)
    change.caused_incidents = [*before, incident_id]
    await _adjust_score(session, change.service, policy.cause_score(priority), caused=1)
    _touch(change)
    await _emit_change(session, ctx, change, "updated", actor,
                       changes={"caused_incidents": [before, change.caused_incidents]})


async def follow_deployment(session: AsyncSession, ctx: Context, change: Change, to: str, *,
                            deployment_number: str, actor: str) -> None:
    """S5: the change follows its deployment (in_progress, succeeded, failed, rolled_back);
    a change requested by a deployment is canceled with it."""
    reason = f"deployment {deployment_number} {to.replace('_', ' ')}"

    async def step(target: str) -> bool:
        move, _ = await _facts_for(session, ctx, change, target)
        try:
            policy.check_move(move)
        except Problem as problem:
            log.info("change %s does not follow %s: %s", change.number, reason, problem.detail)
            return False
        await _apply_move(session, ctx, change, target, reason=reason, actor=actor)
        return True

    if to == "in_progress" and change.status == "scheduled":
        await step("implement")
    elif to == "succeeded":
        if change.status == "scheduled" and not await step("implement"):
            return
        if change.status == "implement":
            await step("review")
    elif to == "canceled" and change.status in {"new", "assess", "authorize", "scheduled"}:
        # A change the deployment asked for has no purpose once that deployment is canceled.
        if change.deployment_id is not None:
            await step("canceled")
    elif to in ("failed", "rolled_back"):
        if not change.marked_unsuccessful and change.status not in policy.FINAL:
            change.marked_unsuccessful = True
            _touch(change)
            await _emit_change(session, ctx, change, "updated", actor,
                               changes={"marked_unsuccessful": [False, True]})
        # The implementation is over either way: it is ready to be reviewed and closed.
        if change.status == "implement":
            await step("review")


async def create_requested_change(session: AsyncSession, ctx: Context, *,
                                  deployment_id: uuid.UUID, request: dict[str, Any],
                                  actor: str) -> Change | None:
    """S1: a deployment's gate asks for a change; a standard one is recorded as scheduled (a
    receipt), a normal one waits in assess for approval. Once per deployment."""
    existing = (await session.scalars(
        select(Change).where(Change.deployment_id == deployment_id))).first()
    if existing is not None:
        return None
    body = ChangeCreate.model_validate({
        k: request.get(k) for k in ("type", "title", "description", "service", "environment",
                                    "planned_start", "planned_end") if request.get(k) is not None
    })
    change = await create_change(session, ctx, body, actor=actor, deployment_id=deployment_id)
    if change.type == "standard":
        # The gate already decided; a receipt records the conflicts it had without blocking.
        conflicts = await conflicts_of(session, change)
        policy.PATHS[change.type].check(change.status, "scheduled")
        await _apply_move(session, ctx, change, "scheduled", actor=actor, conflicts=conflicts,
                          reason="change receipt for a deployment")
    elif change.type == "normal":
        await _apply_move(session, ctx, change, "assess", actor=actor,
                          reason="awaiting approval for a deployment")
    return change


# --- freezes -------------------------------------------------------------------------------


def public_freeze(freeze: Freeze) -> FreezePublic:
    return FreezePublic.model_validate({
        **freeze.model_dump(),
        "allowed_transitions": policy.FREEZE_API_MOVES.allowed(freeze.status),
    })


async def _emit_freeze(session: AsyncSession, ctx: Context, freeze: Freeze, verb: str,
                       actor: str, **facts: Any) -> None:
    _emit(session, ctx, type_=f"tandem.freeze.{verb}", subject=freeze.id, version=freeze.version,
          actor=actor, freeze=public_freeze(freeze), **facts)


async def create_freeze(session: AsyncSession, ctx: Context, body: FreezeCreate, *,
                        actor: str) -> Freeze:
    """A manual freeze of some services (or all); active at once if it has started."""
    now = utcnow()
    errors = []
    if body.ends_at <= body.starts_at:
        errors.append({"field": "ends_at", "message": "must be after starts_at"})
    elif body.ends_at <= now:
        errors.append({"field": "ends_at", "message": "must be in the future"})
    if errors:
        raise Problem(422, "The freeze is not valid: " + "; ".join(
            f"{e['field']} {e['message']}" for e in errors),
            type_="urn:tandem:problem:validation", errors=errors)
    freeze = Freeze(
        number=await next_number(session, "FRZ"), services=sorted(set(body.services)),
        starts_at=body.starts_at, ends_at=body.ends_at,
        status=policy.freeze_status_at(body.starts_at, body.ends_at, now), source="manual",
        reason=body.reason, created_by=actor,
    )
    session.add(freeze)
    await _emit_freeze(session, ctx, freeze, "created", actor)
    return freeze


async def end_freeze(session: AsyncSession, ctx: Context, freeze: Freeze, *, reason: str,
                     actor: str, check: bool = True) -> Freeze:
    """End a freeze now (early, or when its incident is over)."""
    if check:
        policy.FREEZE_API_MOVES.check(freeze.status, "ended")
    now = utcnow()
    before = freeze.status
    freeze.status, freeze.ended_at = "ended", now
    # An early end shortens the announced window, so readers of the times agree with status.
    if freeze.ends_at is None or freeze.ends_at > now:
        freeze.ends_at = max(now, freeze.starts_at)
    _touch(freeze)
    await _emit_freeze(session, ctx, freeze, "transitioned", actor, from_=before, to="ended",
                       reason=reason)
    return freeze


async def advance_freezes(session: AsyncSession, ctx: Context,
                          now: datetime | None = None) -> int:
    """The freeze clock: move freezes whose time has come; returns how many moved."""
    now = now or utcnow()
    stmt = select(Freeze).where(Freeze.status != "ended", or_(
        and_(Freeze.status == "scheduled", Freeze.starts_at <= now),
        and_(Freeze.ends_at.is_not(None), Freeze.ends_at <= now)))  # type: ignore[union-attr, operator]
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True)
    moved = 0
    for freeze in await session.scalars(stmt):
        target = policy.freeze_status_at(freeze.starts_at, freeze.ends_at, now)
        if target == freeze.status:
            continue
        before = freeze.status
        if target == "ended":
            freeze.ended_at = now
        freeze.status = target
        _touch(freeze)
        await _emit_freeze(session, ctx, freeze, "transitioned", SYSTEM_ACTOR, from_=before,
                           to=target, reason="its window " + ("ended" if target == "ended"
                                                              else "started"))
        moved += 1
    return moved


async def apply_incident(session: AsyncSession, ctx: Context, incident: dict[str, Any], *,
                         actor: str) -> None:
    """Project an incident snapshot; S4: an open P1/P2 incident freezes its service (once per
    incident) until it is resolved, closed or canceled."""
    incident_id = uuid.UUID(incident["id"])
    view = await session.get(IncidentView, incident_id)
    if view is None:
        view = IncidentView(id=incident_id, number=incident.get("number", ""),
                            service=incident["service"], environment=incident["environment"],
                            priority=int(incident["priority"]), major=bool(incident["major"]),
                            status=incident["status"])
        session.add(view)
    else:
        view.service, view.environment = incident["service"], incident["environment"]
        view.priority, view.major = int(incident["priority"]), bool(incident["major"])
        view.status, view.updated_at = incident["status"], utcnow()
    is_open = view.status not in OPEN_INCIDENT_EXCLUDED
    freeze = (await session.scalars(
        select(Freeze).where(Freeze.incident_id == incident_id))).first()
    if is_open and view.priority <= 2 and freeze is None:
        now = utcnow()
        freeze = Freeze(
            number=await next_number(session, "FRZ"), services=[view.service], starts_at=now,
            ends_at=None, status="active", source="incident", incident_id=incident_id,
            reason=f"open P{view.priority} incident {view.number or incident_id}",
            created_by=actor,
        )
        session.add(freeze)
        await _emit_freeze(session, ctx, freeze, "created", actor)
    elif not is_open and freeze is not None and freeze.status != "ended":
        await end_freeze(session, ctx, freeze, actor=actor, check=False,
                         reason=f"incident {view.number or incident_id} {view.status}")
