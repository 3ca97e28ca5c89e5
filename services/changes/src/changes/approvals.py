"""Approvals: managers' decisions on normal and emergency changes. The approval that completes
the change's rule moves it on by itself (assess -> authorize -> scheduled); a rejection sends
it back to new. Who may decide, and how many it takes (by count, or by ownership: a manager of
the service's owner team and one of its operations team): :mod:`changes.rules.approvals`."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from changes.change_requests import ChangeAggregate, apply_move, move_facts
from changes.config import ChangesSettings
from changes.events import ChangeApprovalRecorded
from changes.models import Change, ChangeApproval
from changes.rules.approvals import approval_refusal, tally
from changes.rules.lifecycle import move_refusal
from changes.schemas import ApprovalPublic, ApprovalRequest, ChangePublic

log = logging.getLogger("changes")


async def record_approval(session: AsyncSession, settings: ChangesSettings, change: Change,
                          req: ApprovalRequest, *, actor: str) -> ChangePublic:
    """A manager's decision on ``change`` (read under the write lock); returns the change as
    it stands after every move the decision made. Under approvals by ownership the owner
    team's approval takes an assessed change to authorize, where it waits for the operations
    team's."""
    changes = ChangeAggregate(settings)
    rule = (await changes.rules(session, [change]))[change.id]
    round_ = await changes.round_of(session, change)
    refusal = approval_refusal(change_type=change.type, status=change.status,
                               required=rule.required, approver=actor,
                               requester=change.requested_by,
                               decided_already=any(a == actor for a, _ in round_), rule=rule)
    if refusal is not None:
        raise refusal
    approval = ChangeApproval(change_id=change.id, approver=actor, decision=req.decision,
                              comment=req.comment)
    session.add(approval)
    counted = tally(rule, [*round_, (actor, req.decision)])
    snapshot = await changes.record(
        session, change, ChangeApprovalRecorded, actor=actor,
        approval=ApprovalPublic.model_validate(approval), decision=req.decision,
        approvals_received=counted.received, approvals_required=counted.required)
    if req.decision == "reject":
        return await apply_move(session, changes, change, "new", actor=actor,
                                reason=f"rejected by {actor}" + (f": {req.comment}"
                                                                 if req.comment else ""))
    if not counted.complete:
        owner_side = rule.sides[0].team if rule.sides else None
        if change.status == "assess" and owner_side is not None \
                and owner_side not in counted.missing:
            snapshot = await apply_move(
                session, changes, change, "authorize", actor=actor,
                reason=f"approved by {owner_side}; waiting for "
                       f"{' and '.join(counted.missing) or 'more approvals'}")
        return snapshot
    if change.status == "assess":
        snapshot = await apply_move(session, changes, change, "authorize", actor=actor,
                                    reason=f"approvals complete ({counted.received} of "
                                           f"{counted.required})")
    move, conflicts = await move_facts(session, changes, change, "scheduled", force=req.force,
                                       may_force=True)
    if (refusal := move_refusal(move)) is not None:
        # Authorized but not schedulable yet (no window, or conflicts without force): it waits.
        log.info("change %s authorized, not scheduled: %s", change.number, refusal.detail)
        return snapshot
    return await apply_move(session, changes, change, "scheduled", actor=actor,
                            reason=f"authorized ({counted.received} of {counted.required} "
                                   "approvals)",
                            conflicts=conflicts, forced=req.force and bool(conflicts))
