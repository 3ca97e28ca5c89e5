"""Approvals: managers' decisions on normal and emergency changes. The approval that completes
the count moves the change on by itself (assess -> authorize -> scheduled); a rejection sends
it back to new. Who may decide, and how many it takes: :mod:`changes.rules.approvals`."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from changes.change_requests import ChangeAggregate, apply_move, move_facts
from changes.config import ChangesSettings
from changes.events import ChangeApprovalRecorded
from changes.models import Change, ChangeApproval
from changes.rules.approvals import approval_refusal
from changes.rules.lifecycle import move_refusal
from changes.schemas import ApprovalPublic, ApprovalRequest, ChangePublic

log = logging.getLogger("changes")


async def record_approval(session: AsyncSession, settings: ChangesSettings, change: Change,
                          req: ApprovalRequest, *, actor: str) -> ChangePublic:
    """A manager's decision on ``change`` (read under the write lock); returns the change as
    it stands after every move the decision made."""
    changes = ChangeAggregate(settings)
    required = changes.approvals_required(change.type)
    round_ = (await session.execute(
        select(ChangeApproval.approver, ChangeApproval.decision).where(
            ChangeApproval.change_id == change.id,
            ChangeApproval.active.is_(True)))).all()  # type: ignore[attr-defined]
    refusal = approval_refusal(change_type=change.type, status=change.status, required=required,
                               approver=actor, requester=change.requested_by,
                               decided_already=any(a.approver == actor for a in round_))
    if refusal is not None:
        raise refusal
    approval = ChangeApproval(change_id=change.id, approver=actor, decision=req.decision,
                              comment=req.comment)
    session.add(approval)
    received = sum(a.decision == "approve" for a in round_) + (req.decision == "approve")
    snapshot = await changes.record(
        session, change, ChangeApprovalRecorded, actor=actor,
        approval=ApprovalPublic.model_validate(approval), decision=req.decision,
        approvals_received=received, approvals_required=required)
    if req.decision == "reject":
        return await apply_move(session, changes, change, "new", actor=actor,
                                reason=f"rejected by {actor}" + (f": {req.comment}"
                                                                 if req.comment else ""))
    if received < required:
        return snapshot
    if change.status == "assess":
        snapshot = await apply_move(session, changes, change, "authorize", actor=actor,
                                    reason=f"approvals complete ({received} of {required})")
    move, conflicts = await move_facts(session, changes, change, "scheduled", force=req.force,
                                       may_force=True)
    if (refusal := move_refusal(move)) is not None:
        # Authorized but not schedulable yet (no window, or conflicts without force): it waits.
        log.info("change %s authorized, not scheduled: %s", change.number, refusal.detail)
        return snapshot
    return await apply_move(session, changes, change, "scheduled", actor=actor,
                            reason=f"authorized ({received} of {required} approvals)",
                            conflicts=conflicts, forced=req.force and bool(conflicts))
