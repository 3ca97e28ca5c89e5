"""Who may approve a change, when, and how many approvals it needs (domain.md: a normal
change is assessed and authorized; an emergency change has its own expedited authority)."""

from __future__ import annotations

from changes.errors import AlreadyDecided, NotApprovable, OwnChange
from changes.rules.lifecycle import PATHS
from tandem.errors import DomainError

#: States in which managers record approvals.
APPROVABLE = {"assess", "authorize"}


def approvals_required(change_type: str, normal: int, emergency: int) -> int:
    """How many approvals a change of ``change_type`` needs to leave authorize (a standard
    change is pre-authorized: none)."""
    return {"normal": normal, "emergency": emergency}.get(change_type, 0)


def approval_refusal(*, change_type: str, status: str, required: int, approver: str,
                     requester: str, decided_already: bool) -> DomainError | None:
    """Why ``approver`` may not decide on the change now, or None: only in assess or authorize
    and for a type that takes approvals, never on one's own change, once per round."""
    if status not in APPROVABLE or required == 0:
        return NotApprovable(change_type, status, PATHS[change_type].allowed(status))
    if approver == requester:
        return OwnChange()
    if decided_already:
        return AlreadyDecided(approver)
    return None
