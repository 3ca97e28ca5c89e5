"""What the incident domain refuses, as typed errors (``tandem.problems`` answers them).

Each is a kind of :mod:`tandem.errors`, so its HTTP status and problem type follow from the
kind; a caller that expects one refusal catches exactly that class.
"""

from __future__ import annotations

from tandem.errors import Conflict, DomainError, Forbidden, Invalid, NotFound


class IncidentFinal(Conflict):
    """A closed or canceled incident is read-only (notes aside); nothing moves it on."""

    code = "final-state"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, allowed=[])


class ManagerDecision(Forbidden):
    """Overriding the priority or declaring a major incident is a manager's call."""

    def __init__(self) -> None:
        super().__init__("Only a manager may override the priority or declare a major "
                         "incident.")


class MoveFieldInvalid(Invalid):
    """A state-specific field of a transition is missing, or given to a move that takes none
    (``on_hold_reason``, ``resolution_code``, ``resolution_notes``)."""


class MitigationOutOfRange(Invalid):
    """``mitigated_at`` lies before the incident was reported, or in the future."""

    def __init__(self) -> None:
        super().__init__("mitigated_at", "must lie between reported_at and now")


class NoteNotFound(NotFound):
    """The incident has no note with that id."""

    def __init__(self, number: str, note_id: str) -> None:
        shown = note_id[:64].replace("\x00", "")
        DomainError.__init__(self, f"Incident {number} has no note {shown}.")


class ReviewCompleted(Conflict):
    """A completed review is the record: nothing is added to it any more."""

    code = "review-completed"

    def __init__(self, number: str) -> None:
        super().__init__(f"Review {number} is completed; it takes no more factors or actions.",
                         allowed=[])


class ChangeUnknown(Invalid):
    """An action item names a change this service has not heard of."""

    def __init__(self, ref: str) -> None:
        super().__init__("change", f"no change {ref[:64]!r} is known (give its id or number)")


class ActionNotFound(NotFound):
    def __init__(self, number: str, ref: str) -> None:
        DomainError.__init__(self, f"Review {number} has no action item {ref[:64]}.")
