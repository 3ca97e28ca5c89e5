"""Change requests (aggregate ``change``): their snapshot, and recording, editing and moving
them along their type's path, each write with its event in the caller's transaction.

The rules are in :mod:`changes.rules.lifecycle`; approvals, conflicts and risk have modules of
their own (:mod:`changes.approvals`, :mod:`changes.conflicts`, :mod:`changes.risk`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from changes import risk, standard_changes, success_scores
from changes.catalog import ownership_of
from changes.config import ChangesSettings
from changes.conflicts import conflicts_of, freezes_passed
from changes.errors import CloseCodeRequired
from changes.events import ChangeCreated, ChangeTransitioned, ChangeUpdated
from changes.freezes import active_freezes
from changes.models import Change, ChangeApproval
from changes.rules.approvals import ApprovalRule, Tally, approval_rule, tally
from changes.rules.lifecycle import (
    PATHS,
    Move,
    check_edit,
    check_incident_link,
    check_move,
    check_window,
    window_covers,
    window_extension,
)
from changes.rules.risk import chosen_risk, risk_rank
from changes.rules.standard_changes import (
    check_templated_window,
    template_refusal,
    templated_window,
)
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
    """Change requests under the service's settings: the snapshot shows the approval rule of
    each change (by what the catalog says of its service) and its approvals against it."""

    def __init__(self, settings: ChangesSettings) -> None:
        super().__init__(Change, name="change", service="changes", number_prefix="CHG")
        self.settings = settings

    async def rules(self, session: AsyncSession,
                    rows: Sequence[Change]) -> dict[uuid.UUID, ApprovalRule]:
        """Each change's approval rule; the catalog's projections are read only for changes
        that take approvals."""
        approved = [c for c in rows if c.type != "standard"]
        owners = await ownership_of(session, {c.service for c in approved},
                                    dual_approval_tier=self.settings.dual_approval_tier)
        none = ApprovalRule("none", 0)
        return {c.id: approval_rule(
            c.type, owners[c.service], normal=self.settings.required_approvals,
            emergency=self.settings.emergency_required_approvals,
            dual_approval_tier=self.settings.dual_approval_tier)
            if c.type != "standard" else none for c in rows}

    async def round_of(self, session: AsyncSession, change: Change) -> list[tuple[str, str]]:
        """The ``(approver, decision)`` pairs of the current round (since the last revert to
        new), oldest first."""
        return [(a, d) for a, d in (await session.execute(
            select(ChangeApproval.approver, ChangeApproval.decision).where(
                ChangeApproval.change_id == change.id,
                ChangeApproval.active.is_(True))  # type: ignore[attr-defined]
            .order_by(ChangeApproval.created_at))).all()]

    async def tally_of(self, session: AsyncSession,
                       change: Change) -> tuple[ApprovalRule, Tally]:
        """The change's approval rule and its current round counted under it."""
        rule = (await self.rules(session, [change]))[change.id]
        return rule, tally(rule, await self.round_of(session, change))

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
        rules = await self.rules(session, rows)
        out = []
        for change in rows:
            rule = rules[change.id]
            counted = tally(rule, [(a.approver, a.decision) for a in by_change[change.id]])
            out.append(ChangePublic.model_validate({
                **change.model_dump(),
                "approvals": [ApprovalPublic.model_validate(a) for a in by_change[change.id]],
                "approvals_required": counted.required,
                "approvals_received": counted.received,
                "approval_rule": rule_public(rule, counted),
                "allowed_transitions": PATHS[change.type].allowed(change.status),
            }))
        return out

    async def snapshot(self, session: AsyncSession, row: Change) -> ChangePublic:
        return (await self.snapshots(session, [row]))[0]


def rule_public(rule: ApprovalRule, counted: Tally) -> dict[str, Any]:
    """The approval rule as a change's snapshot shows it, with who approved for each side."""
    return {"kind": rule.kind, "tier": rule.tier, "owner_team": rule.owner_team,
            "operations_team": rule.operations_team, "unowned": rule.unowned,
            "sides": [{"side": side.side, "team": side.team,
                       "approved_by": list(counted.approved_by[i])}
                      for i, side in enumerate(rule.sides)],
            "missing": list(counted.missing), "note": rule.note}


async def create(session: AsyncSession, settings: ChangesSettings, body: ChangeCreate, *,
                 actor: str, deployment_id: uuid.UUID | None = None,
                 by_pipeline: bool = False,
                 may_lower_risk: bool = False) -> tuple[Change, ChangePublic]:
    """Record a new change request (status ``new``) and publish ``created``. A standard change
    from a template takes its title, description and window from it; a pipeline's standard
    change needs one (:func:`~changes.rules.standard_changes.template_refusal`)."""
    row = await standard_changes.templates.find(session, body.template_id)
    template = standard_changes.template_facts(row) if row is not None else None
    if (refusal := template_refusal(
            change_type=body.type.value, service=body.service, by_pipeline=by_pipeline,
            template_named=body.template_id is not None, template=template)) is not None:
        raise refusal
    title, description = body.title, body.description
    start, end = body.planned_start, body.planned_end
    if row is not None and template is not None:
        title, description = title or row.title, description or row.description
        start, end = templated_window(start, end, template, utcnow())
    check_window(start, end, settings.max_window_hours)
    check_incident_link(body.type, body.incident_id)
    level, rule = await risk.assess(
        session, settings, change_type=body.type.value, service=body.service,
        environment=body.environment.value, planned_start=start, planned_end=end)
    lowered_by = None
    if body.risk is not None:
        level, rule, lowered_by = chosen_risk(body.risk, level, rule, actor=actor,
                                              may_lower=may_lower_risk, reason=body.risk_reason)
    changes = ChangeAggregate(settings)
    change = await changes.new(
        session, type=body.type.value, title=title, description=description or "",
        service=body.service, environment=body.environment.value, status="new", risk=level,
        risk_rule=rule, risk_set_by_requester=body.risk is not None,
        risk_lowered_by=lowered_by, risk_reason=body.risk_reason if lowered_by else None,
        planned_start=start, planned_end=end, incident_id=body.incident_id,
        deployment_id=deployment_id, template_id=body.template_id, requested_by=actor)
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
               body: ChangeUpdate, *, actor: str, may_lower_risk: bool = False) -> ChangePublic:
    """Apply a PATCH; publishes ``updated`` with ``{field: [old, new]}`` when anything changed.
    A new window is assessed for risk again, unless a person chose the risk; a risk given is
    held to the rules' (only a manager lowers it, with ``risk_reason``)."""
    given = body.model_dump(exclude_unset=True)
    reason = given.pop("risk_reason", None)
    check_edit(change.type, change.status, given)
    windowed = "planned_start" in given or "planned_end" in given
    start = given.get("planned_start", change.planned_start)
    end = given.get("planned_end", change.planned_end)
    if windowed:
        check_window(start, end, settings.max_window_hours)
        template = await standard_changes.template_of_change(session, change.template_id)
        if template is not None:
            check_templated_window(start, end, template)
    reassessed = chosen = None
    if "risk" in given or (windowed and change.risk_lowered_by is None):
        # Assessed before the row changes, so the row is written once, with its event.
        assessed = await risk.assess(
            session, settings, change_type=change.type, service=change.service,
            environment=change.environment, planned_start=start, planned_end=end)
        if "risk" in given:
            chosen = chosen_risk(given["risk"], *assessed, actor=actor,
                                 may_lower=may_lower_risk, reason=reason)
        elif not change.risk_set_by_requester or risk_rank(assessed[0]) > risk_rank(
                change.risk):
            # A requester's proposal stands unless the rules now give more.
            reassessed = assessed
    before = _Edited.model_validate(change).model_dump(mode="json")
    for name, value in given.items():
        setattr(change, name, value)
    if chosen is not None:
        change.risk, change.risk_rule, change.risk_lowered_by = chosen
        change.risk_set_by_requester = True
        change.risk_reason = reason if chosen[2] else None
    elif reassessed is not None:
        change.risk, change.risk_rule = reassessed
    after = _Edited.model_validate(change).model_dump(mode="json")
    diff = {name: [before[name], after[name]] for name in before if before[name] != after[name]}
    changes = ChangeAggregate(settings)
    if not diff:
        return await changes.snapshot(session, change)
    return await changes.record(session, change, ChangeUpdated, actor=actor, changes=diff)


def extends_window(change: Change, to: str, *, for_its_deployment: bool = False) -> bool:
    """Whether moving ``change`` to ``to`` extends its planned window to cover now rather than
    being refused: an emergency change's (scheduled or implemented), and a change implemented
    by the very deployment that asked for it (the gate allowed that deployment)."""
    if to not in ("scheduled", "implement"):
        return False
    return change.type == "emergency" or (for_its_deployment and to == "implement")


async def move_facts(session: AsyncSession, changes: ChangeAggregate, change: Change, to: str,
                     *, force: bool = False, may_force: bool = False,
                     close_code: str | None = None,
                     for_its_deployment: bool = False) -> tuple[Move, list[Conflict]]:
    """What moving ``change`` to ``to`` depends on (read only as far as the move needs), and
    the conflicts of its window when it is being scheduled."""
    conflicts: list[Conflict] = []
    counted = Tally(0, 0)
    if to == "scheduled":
        conflicts = await conflicts_of(session, change)
        if change.type != "standard":
            _, counted = await changes.tally_of(session, change)
    frozen = (bool(await active_freezes(session, change.service, change.environment))
              if to == "implement" else False)
    move = Move(
        type=change.type, status=change.status, to=to, approvals_received=counted.received,
        approvals_required=counted.required, approvals_missing=counted.missing, frozen=frozen,
        conflicts=len(conflicts), force=force, may_force=may_force,
        has_window=change.planned_start is not None and change.planned_end is not None,
        close_code=close_code,
        in_window=(to != "implement" or window_covers(change.planned_start, change.planned_end,
                                                       utcnow())
                   or extends_window(change, to, for_its_deployment=for_its_deployment)),
        planned_start=change.planned_start, planned_end=change.planned_end,
    )
    return move, conflicts


async def apply_move(session: AsyncSession, changes: ChangeAggregate, change: Change, to: str,
                     *, reason: str, actor: str, conflicts: Sequence[Conflict] = (),
                     forced: bool = False, close_code: str | None = None,
                     close_notes: str | None = None, forced_window: bool = False,
                     for_its_deployment: bool = False) -> ChangePublic:
    """Write an already checked move and its ``transitioned`` event. An emergency change (or
    a deployment's own change, implemented by it) scheduled or implemented outside its window
    has the window moved to cover now, with the reason recorded; a manager's ``force``
    outside the window is recorded on the change."""
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
    passed = (await freezes_passed(session, change)
              if to in ("scheduled", "implement") else [])
    extended_from = None
    if extends_window(change, to, for_its_deployment=for_its_deployment) and (
            extended := window_extension(change.planned_start, change.planned_end,
                                         utcnow())) is not None:
        extended_from = [change.planned_start, change.planned_end]
        change.planned_start, change.planned_end = extended
        change.window_extended_reason = (
            f"{'emergency change ' if change.type == 'emergency' else ''}{to} outside its "
            f"planned window ({extended_from[0].isoformat()} to {extended_from[1].isoformat()})"
            f" by {actor}: {reason}")[:2000]
    before = change.status
    change.status = to
    if to == "scheduled" and forced:
        change.forced, change.forced_by = True, actor
    if to == "implement" and forced_window:
        change.window_forced_by = actor
    if to == "closed":
        change.close_code, change.close_notes, change.closed_at = close_code, close_notes, utcnow()
    return await changes.record(session, change, ChangeTransitioned, actor=actor, from_=before,
                                to=to, reason=reason, forced=forced or forced_window,
                                conflicts=list(conflicts), freezes_passed=passed,
                                window_extended_from=extended_from)


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
    outside = req.to == "implement" and not window_covers(
        change.planned_start, change.planned_end, utcnow()) and not extends_window(change, req.to)
    return await apply_move(session, changes, change, req.to, reason=req.reason, actor=actor,
                            conflicts=conflicts, forced=req.force and bool(conflicts),
                            close_code=close_code, close_notes=req.close_notes,
                            forced_window=req.force and outside)
