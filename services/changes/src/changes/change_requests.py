"""Change requests (aggregate ``change``): their snapshot, and recording, editing and moving
them along their type's path, each write with its event in the caller's transaction.

The rules are in :mod:`changes.rules.lifecycle`; approvals, conflicts and risk have modules of
their own (:mod:`changes.approvals`, :mod:`changes.conflicts`, :mod:`changes.risk`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from changes import risk, success_scores
from changes.config import ChangesSettings
from changes.conflicts import conflicts_of
from changes.errors import CloseCodeRequired
from changes.events import ChangeCreated, ChangeTransitioned, ChangeUpdated
from changes.freezes import active_freezes
from changes.models import Change, ChangeApproval
from changes.rules.approvals import approvals_required
from changes.rules.lifecycle import (
    PATHS,
    Move,
    check_edit,
    check_incident_link,
    check_move,
    check_window,
)
from changes.rules.risk import SET_BY_REQUESTER
from changes.rules.success_scores import close_score
from changes.schemas import (
    ApprovalPublic,
    ChangeCreate,
    ChangePublic,
    ChangeTransitionRequest,
    ChangeUpdate,
    Conflict,
)
from tandem.aggregate import Aggregate
from tandem.db import utcnow


class ChangeAggregate(Aggregate[Change, ChangePublic]):
    """Change requests under the service's settings (its snapshot counts approvals against
    the number they require)."""

    def __init__(self, settings: ChangesSettings) -> None:
        super().__init__(Change, name="change", service="changes", number_prefix="CHG")
        self.settings = settings

    def approvals_required(self, change_type: str) -> int:
        return approvals_required(change_type, self.settings.required_approvals,
                                  self.settings.emergency_required_approvals)

    async def approvals_received(self, session: AsyncSession, change_id: uuid.UUID) -> int:
        """The approving decisions of the current round (since the last revert to new)."""
        count = await session.scalar(
            select(func.count()).select_from(ChangeApproval).where(
                ChangeApproval.change_id == change_id,
                ChangeApproval.active.is_(True),  # type: ignore[attr-defined]
                ChangeApproval.decision == "approve"))
        return int(count or 0)

    async def snapshots(self, session: AsyncSession,
                        rows: Sequence[Change]) -> list[ChangePublic]:
        """API snapshots of ``rows`` (their active approvals read in one query)."""
        by_change: dict[uuid.UUID, list[ChangeApproval]] = {c.id: [] for c in rows}
        # A change at version 1 has had only its created event, so no approval: nothing to read
        # on the create path.
        decided = [c.id for c in rows if c.version > 1]
        if decided:
            approvals = await session.scalars(
                select(ChangeApproval)
                .where(ChangeApproval.change_id.in_(decided),  # type: ignore[attr-defined]
                       ChangeApproval.active.is_(True))  # type: ignore[attr-defined]
                .order_by(ChangeApproval.created_at)
                .execution_options(populate_existing=True))
            for approval in approvals:
                by_change[approval.change_id].append(approval)
        return [ChangePublic.model_validate({
            **change.model_dump(),
            "approvals": [ApprovalPublic.model_validate(a) for a in by_change[change.id]],
            "approvals_required": self.approvals_required(change.type),
            "approvals_received": sum(a.decision == "approve" for a in by_change[change.id]),
            "allowed_transitions": PATHS[change.type].allowed(change.status),
        }) for change in rows]

    async def snapshot(self, session: AsyncSession, row: Change) -> ChangePublic:
        return (await self.snapshots(session, [row]))[0]


async def create(session: AsyncSession, settings: ChangesSettings, body: ChangeCreate, *,
                 actor: str, deployment_id: uuid.UUID | None = None,
                 ) -> tuple[Change, ChangePublic]:
    """Record a new change request (status ``new``) and publish ``created``."""
    check_window(body.planned_start, body.planned_end, settings.max_window_hours)
    check_incident_link(body.type, body.incident_id)
    if body.risk is not None:
        level, rule = body.risk, SET_BY_REQUESTER
    else:
        level, rule = await risk.assess(
            session, settings, change_type=body.type.value, service=body.service,
            environment=body.environment.value, planned_start=body.planned_start,
            planned_end=body.planned_end)
    changes = ChangeAggregate(settings)
    change = await changes.new(
        session, type=body.type.value, title=body.title, description=body.description,
        service=body.service, environment=body.environment.value, status="new", risk=level,
        risk_rule=rule, risk_set_by_requester=body.risk is not None,
        planned_start=body.planned_start, planned_end=body.planned_end,
        incident_id=body.incident_id, deployment_id=deployment_id, requested_by=actor)
    return change, await changes.record(session, change, ChangeCreated, actor=actor)


class _Edited(BaseModel):
    """The fields a PATCH may edit (risk_rule follows them), as the snapshot shows them."""

    model_config = ConfigDict(from_attributes=True)

    title: str
    description: str
    planned_start: datetime | None
    planned_end: datetime | None
    risk: str
    risk_rule: str | None
    incident_id: uuid.UUID | None


async def edit(session: AsyncSession, settings: ChangesSettings, change: Change,
               body: ChangeUpdate, *, actor: str) -> ChangePublic:
    """Apply a PATCH; publishes ``updated`` with ``{field: [old, new]}`` when anything changed.
    A new window is assessed for risk again, unless the requester chose the risk."""
    given = body.model_dump(exclude_unset=True)
    check_edit(change.type, change.status, given)
    reassessed = None
    if "planned_start" in given or "planned_end" in given:
        start = given.get("planned_start", change.planned_start)
        end = given.get("planned_end", change.planned_end)
        check_window(start, end, settings.max_window_hours)
        if not change.risk_set_by_requester and "risk" not in given:
            # Assessed before the row changes, so the row is written once, with its event.
            reassessed = await risk.assess(
                session, settings, change_type=change.type, service=change.service,
                environment=change.environment, planned_start=start, planned_end=end)
    before = _Edited.model_validate(change).model_dump(mode="json")
    for name, value in given.items():
        setattr(change, name, value)
    if "risk" in given:
        change.risk_set_by_requester, change.risk_rule = True, SET_BY_REQUESTER
    elif reassessed is not None:
        change.risk, change.risk_rule = reassessed
    after = _Edited.model_validate(change).model_dump(mode="json")
    diff = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    changes = ChangeAggregate(settings)
    if not diff:
        return await changes.snapshot(session, change)
    return await changes.record(session, change, ChangeUpdated, actor=actor, changes=diff)


async def move_facts(session: AsyncSession, changes: ChangeAggregate, change: Change, to: str,
                     *, force: bool = False, may_force: bool = False,
                     close_code: str | None = None) -> tuple[Move, list[Conflict]]:
    """What moving ``change`` to ``to`` depends on (read only as far as the move needs), and
    the conflicts of its window when it is being scheduled."""
    conflicts: list[Conflict] = []
    received = 0
    if to == "scheduled":
        conflicts = await conflicts_of(session, change)
        received = await changes.approvals_received(session, change.id)
    frozen = bool(await active_freezes(session, change.service)) if to == "implement" else False
    move = Move(
        type=change.type, status=change.status, to=to, approvals_received=received,
        approvals_required=changes.approvals_required(change.type), frozen=frozen,
        conflicts=len(conflicts), force=force, may_force=may_force,
        has_window=change.planned_start is not None and change.planned_end is not None,
        close_code=close_code,
    )
    return move, conflicts


async def apply_move(session: AsyncSession, changes: ChangeAggregate, change: Change, to: str,
                     *, reason: str, actor: str, conflicts: Sequence[Conflict] = (),
                     forced: bool = False, close_code: str | None = None,
                     close_notes: str | None = None) -> ChangePublic:
    """Write an already checked move and its ``transitioned`` event."""
    # The statements beside the row go first, so the row itself is written once, with its event.
    if to == "new":
        # Revert to new (or a rejection) cancels the approvals gathered so far.
        await session.execute(
            update(ChangeApproval)
            .where(ChangeApproval.change_id == change.id,
                   ChangeApproval.active.is_(True))  # type: ignore[attr-defined]
            .values(active=False))
    if to == "closed":
        if close_code is None:
            raise CloseCodeRequired()
        await success_scores.add_points(session, change.service, close_score(close_code),
                                        closed=1)
    before = change.status
    change.status = to
    if to == "scheduled" and forced:
        change.forced, change.forced_by = True, actor
    if to == "closed":
        change.close_code, change.close_notes, change.closed_at = close_code, close_notes, utcnow()
    return await changes.record(session, change, ChangeTransitioned, actor=actor, from_=before,
                                to=to, reason=reason, forced=forced, conflicts=list(conflicts))


async def transition(session: AsyncSession, settings: ChangesSettings, change: Change,
                     req: ChangeTransitionRequest, *, actor: str,
                     may_force: bool) -> ChangePublic:
    """Move ``change`` along its type's path, enforcing approvals, conflicts and freezes."""
    changes = ChangeAggregate(settings)
    close_code = req.close_code.value if req.close_code else None
    if req.to == "closed" and close_code is None and change.marked_unsuccessful:
        close_code = "unsuccessful"
    move, conflicts = await move_facts(session, changes, change, req.to, force=req.force,
                                       may_force=may_force, close_code=close_code)
    check_move(move)
    return await apply_move(session, changes, change, req.to, reason=req.reason, actor=actor,
                            conflicts=conflicts, forced=req.force and bool(conflicts),
                            close_code=close_code, close_notes=req.close_notes)
