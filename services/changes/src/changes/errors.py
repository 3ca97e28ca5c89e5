"""What change enablement refuses, as typed errors (``tandem.problems`` answers them).

Each is a kind of :mod:`tandem.errors`, so its HTTP status and problem type follow from the
kind; a caller that expects one refusal (an approval that cannot schedule yet) asks the rule
that returns it (``lifecycle.move_refusal``) instead of catching anything.
"""

from __future__ import annotations

from tandem.errors import Conflict, Forbidden, Invalid


class ChangeFinal(Conflict):
    """A closed or canceled change is read-only."""

    code = "final-state"

    def __init__(self, status: str) -> None:
        super().__init__(f"A {status} change cannot be edited.", allowed=[])


class WindowFixed(Conflict):
    """Once scheduled, a change's planned window stays as it was approved."""

    code = "window-fixed"

    def __init__(self, status: str) -> None:
        super().__init__(f"The planned window of a {status} change is fixed; revert it to new "
                         "or cancel it to plan again.", allowed=[])


class IncidentLinkInvalid(Invalid):
    """Only an emergency change names the incident it fixes."""

    def __init__(self) -> None:
        super().__init__("incident_id", "emergency changes only",
                         detail="Only an emergency change names the incident it fixes.")


class FieldRequired(Invalid):
    """A PATCH may not clear a field every change has."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "may not be null", detail=f"{field} cannot be cleared.")


class WindowRequired(Invalid):
    """A change is scheduled into its planned window, so it needs one."""

    code = "window-required"

    def __init__(self) -> None:
        super().__init__("planned_start", "the change has no planned window",
                         detail="A change needs planned_start and planned_end to be scheduled.")


class ApprovalsMissing(Conflict):
    """Fewer approvals than its rule needs: the change cannot be scheduled yet (under
    ownership, ``missing`` names the teams whose manager has not approved)."""

    code = "approvals-missing"

    def __init__(self, change_type: str, received: int, required: int,
                 missing: tuple[str, ...] = ()) -> None:
        waiting = (f"; it waits for a manager of {' and of '.join(missing)}" if missing else "")
        super().__init__(f"This {change_type} change has {received} of {required} approvals "
                         f"needed to be scheduled{waiting}.", approvals_received=received,
                         approvals_required=required, approvals_missing=list(missing),
                         allowed=[])


class ForceForbidden(Forbidden):
    """Scheduling past conflicts is a manager's call."""

    def __init__(self) -> None:
        super().__init__("Only a manager or owner may force a change past its conflicts.")


class ImplementOutsideWindow(Conflict):
    """Implementing a change outside its planned window is a manager's call (``force``)."""

    code = "outside-window"

    def __init__(self, start: object, end: object) -> None:
        super().__init__(f"The change is planned for {start} to {end}, which does not cover "
                         "now; reschedule it, or have a manager implement it with force: true.",
                         allowed=["canceled"], planned_start=str(start), planned_end=str(end))


class ScheduleConflict(Conflict):
    """The planned window overlaps another change's slot or a freeze."""

    code = "schedule-conflict"

    def __init__(self, conflicts: int) -> None:
        super().__init__(f"The planned window has {conflicts} conflict(s); see GET /conflicts, "
                         "or have a manager move it with force: true.", allowed=[])


class Frozen(Conflict):
    """A freeze holds the service: only an emergency change may be implemented."""

    code = "frozen"

    def __init__(self) -> None:
        super().__init__("The service is frozen: only an emergency change may be implemented "
                         "now.", allowed=["canceled"])


class CloseCodeRequired(Invalid):
    """Closing a change records how it went."""

    code = "close-code-required"

    def __init__(self) -> None:
        super().__init__("close_code", "required to close a change",
                         detail="Closing a change needs a close_code: successful, "
                                "successful_with_issues or unsuccessful.")


class NotApprovable(Conflict):
    """Approvals are recorded in assess or authorize, for types that take them."""

    code = "not-approvable"

    def __init__(self, change_type: str, status: str, allowed: list[str]) -> None:
        super().__init__(f"A {change_type} change in {status} takes no approvals; approvals are "
                         "recorded in assess or authorize.", allowed=allowed)


class OwnChange(Forbidden):
    """A requester never approves (or rejects) their own change."""

    code = "own-change"

    def __init__(self) -> None:
        super().__init__("A requester cannot approve or reject their own change.")


class NotOnTheOwningTeams(Forbidden):
    """Under approvals by ownership, only managers of the service's owner and operations
    teams decide."""

    code = "not-on-the-owning-teams"

    def __init__(self, approver: str, teams: list[str]) -> None:
        super().__init__(f"{approver} is in neither {' nor '.join(teams)}: a change of this "
                         "service is approved by managers of its owner and operations teams "
                         "(the catalog's).", teams=teams,
                         rule="approvals by ownership (TANDEM_CHANGES_DUAL_APPROVAL_TIER)")


class AlreadyDecided(Conflict):
    """One decision per manager per round of approvals."""

    code = "already-decided"

    def __init__(self, approver: str) -> None:
        super().__init__(f"{approver} has already decided on this change.")


class StandardChangesOnly(Forbidden):
    """The pipeline role records and moves standard changes (receipts) alone."""

    def __init__(self) -> None:
        super().__init__("The pipeline role records and moves standard changes only.")


#: The rule a pipeline's standard change is held to (contract section 7).
TEMPLATE_RULE = "a pipeline records a standard change only from an active template of its service"


class TemplateRequired(Forbidden):
    """A pipeline records a standard change only from an active template of its service."""

    code = "standard-change-template-required"

    def __init__(self) -> None:
        super().__init__("A pipeline records a standard change only from an active standard "
                         "change template of its service: name it in template_id.",
                         rule=TEMPLATE_RULE)


class TemplateNotUsable(Forbidden):
    """The template named is retired, or belongs to another service."""

    code = "standard-change-template-not-usable"

    def __init__(self, number: str, why: str) -> None:
        super().__init__(f"Standard change template {number} {why}; a standard change comes "
                         "only from an active template of its own service.", rule=TEMPLATE_RULE,
                         template=number)


class TemplateUnknown(Invalid):
    """No template has that id."""

    def __init__(self) -> None:
        super().__init__("template_id", "no standard change template has this id",
                         detail="template_id names no standard change template.")


class TemplateForStandardOnly(Invalid):
    """Only a standard change is recorded from a template."""

    def __init__(self) -> None:
        super().__init__("template_id", "standard changes only",
                         detail="Only a standard change is recorded from a template.")


class TemplateWindowExceeded(Invalid):
    """A templated change's window is longer than its template allows."""

    def __init__(self, number: str, minutes: int) -> None:
        super().__init__("planned_end", f"the window is longer than template {number} allows "
                                        f"({minutes} minutes)",
                         detail=f"Standard change template {number} allows a window of at "
                                f"most {minutes} minutes.")


class TemplateRetired(Conflict):
    """A retired template is read-only."""

    code = "final-state"

    def __init__(self, number: str) -> None:
        super().__init__(f"Standard change template {number} is retired; write a new one.",
                         allowed=[])
