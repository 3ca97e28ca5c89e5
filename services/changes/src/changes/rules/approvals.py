"""Who may approve a change, when, and how many approvals it needs (domain.md: a normal
change is assessed and authorized; an emergency change has its own expedited authority).

Approvals by ownership (contract section 7): a change of a service at or above
``TANDEM_CHANGES_DUAL_APPROVAL_TIER`` (tier 1 is the most critical) needs a manager of its
owner team **and** one of its operations team, the catalog's teams, two people: the wall
between building and running crossed on purpose. Any other change needs its type's count from
any manager, as before; a change of a service the catalog has no owner team for says so in
its rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from changes.errors import AlreadyDecided, NotApprovable, NotOnTheOwningTeams, OwnChange
from changes.rules.lifecycle import PATHS
from tandem.errors import DomainError

#: States in which managers record approvals.
APPROVABLE = {"assess", "authorize"}


def approvals_required(change_type: str, normal: int, emergency: int) -> int:
    """How many approvals a change of ``change_type`` needs to leave authorize (a standard
    change is pre-authorized: none)."""
    return {"normal": normal, "emergency": emergency}.get(change_type, 0)


@dataclass(frozen=True)
class Ownership:
    """What the catalog last said of a change's service (nothing, when ``known`` is false)."""

    service: str
    known: bool = False
    tier: int | None = None
    owner_team: str | None = None
    operations_team: str | None = None
    owner_members: frozenset[str] = frozenset()
    operations_members: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Side:
    """One team whose manager must approve (``owner`` or ``operations``)."""

    side: str
    team: str
    members: frozenset[str]


@dataclass(frozen=True)
class ApprovalRule:
    """How a change is approved: ``none`` (pre-authorized), ``managers`` (any ``required``
    managers) or ``ownership`` (a manager of each side's team, ``required`` in all)."""

    kind: str
    required: int
    sides: tuple[Side, ...] = ()
    tier: int | None = None
    owner_team: str | None = None
    operations_team: str | None = None
    unowned: bool = False
    note: str | None = None

    def eligible(self, approver: str) -> bool:
        """Whether ``approver``'s decision counts under this rule."""
        return self.kind != "ownership" or any(approver in s.members for s in self.sides)


@dataclass(frozen=True)
class Tally:
    """The approving decisions that count, against what the rule needs."""

    received: int
    required: int
    #: Per side: the approvers of that side's team.
    approved_by: tuple[tuple[str, ...], ...] = ()
    #: Teams whose manager's approval is still needed.
    missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.received >= self.required and not self.missing


def approval_rule(change_type: str, ownership: Ownership, *, normal: int, emergency: int,
                  dual_approval_tier: int) -> ApprovalRule:
    """The rule a change of ``change_type`` of the service ``ownership`` describes is
    approved by."""
    base = approvals_required(change_type, normal, emergency)
    facts = {"tier": ownership.tier, "owner_team": ownership.owner_team,
             "operations_team": ownership.operations_team}
    if base == 0:
        return ApprovalRule("none", 0, **facts)
    if ownership.owner_team is None:
        why = ("is not in the catalog yet" if not ownership.known
               else "has no owner team in the catalog")
        return ApprovalRule("managers", base, unowned=True, **facts,
                            note=f"{ownership.service} {why} (unowned): any {_managers(base)} "
                                 "may approve.")
    if (ownership.tier is None or dual_approval_tier < 1
            or ownership.tier > dual_approval_tier):
        return ApprovalRule("managers", base, **facts)
    sides = [Side("owner", ownership.owner_team, ownership.owner_members)]
    note = None
    if ownership.operations_team and ownership.operations_team != ownership.owner_team:
        sides.append(Side("operations", ownership.operations_team,
                          ownership.operations_members))
    else:
        note = (f"{ownership.service} has no operations team in the catalog: a manager of "
                f"{ownership.owner_team} approves alone.")
    empty = [s.team for s in sides if not s.members]
    if empty:
        note = " ".join(filter(None, [note, f"{', '.join(empty)} has no members in the "
                                            "catalog; add them so its managers can approve."]))
    return ApprovalRule("ownership", max(len(sides), base), tuple(sides), unowned=False,
                        note=note, **facts)


def _managers(count: int) -> str:
    return "manager" if count == 1 else f"{count} managers"


def tally(rule: ApprovalRule, decisions: Sequence[tuple[str, str]]) -> Tally:
    """Count the ``(approver, decision)`` pairs of the current round under ``rule``: under
    ownership, each side needs an approver of its team, and one person stands for one side."""
    approvers = list(dict.fromkeys(a for a, d in decisions if d == "approve"))
    if rule.kind != "ownership":
        return Tally(len(approvers), rule.required)
    counted = [a for a in approvers if rule.eligible(a)]
    by_side = tuple(tuple(a for a in counted if a in s.members) for s in rule.sides)
    missing: list[str] = [s.team for s, found in zip(rule.sides, by_side, strict=True)
                          if not found]
    if not missing and len(rule.sides) == 2 and set(by_side[0]) == set(by_side[1]) \
            and len(by_side[0]) == 1:
        # One person in both teams approved: the other side still needs someone else.
        missing.append(rule.sides[1].team)
    return Tally(len(counted), rule.required, by_side, tuple(missing))


def approval_refusal(*, change_type: str, status: str, required: int, approver: str,
                     requester: str, decided_already: bool,
                     rule: ApprovalRule | None = None) -> DomainError | None:
    """Why ``approver`` may not decide on the change now, or None: only in assess or authorize
    and for a type that takes approvals, never on one's own change, once per round, and under
    ownership only a member of the owner or the operations team."""
    if status not in APPROVABLE or required == 0:
        return NotApprovable(change_type, status, PATHS[change_type].allowed(status))
    if approver == requester:
        return OwnChange()
    if decided_already:
        return AlreadyDecided(approver)
    if rule is not None and not rule.eligible(approver):
        return NotOnTheOwningTeams(approver, [s.team for s in rule.sides])
    return None
