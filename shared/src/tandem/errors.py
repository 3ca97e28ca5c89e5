"""Domain errors: what a rule of Tandem's domain refuses, as typed exceptions.

Rules and operations raise these, never HTTP problems; :mod:`tandem.problems` maps each kind to
its RFC 9457 answer in one place (``DomainError.status``). A service subclasses the kind that
fits (``class ApprovalsMissing(Conflict)``), so a caller that expects a refusal catches exactly
that one, and every other error still reaches the client.

Each error carries a ``code`` (the ``type`` of its problem, ``urn:tandem:problem:<code>``), a
sentence for people (``detail``) and members a client can act on (``allowed``, ``current``,
...). A field error names the field in ``errors``.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A request the domain refuses; subclasses choose the kind (and so the HTTP status)."""

    #: The HTTP status of this kind of refusal (read only by :mod:`tandem.problems`).
    status: ClassVar[int] = 409
    #: The default problem code of the class (``urn:tandem:problem:<code>``).
    code: str = "conflict"

    def __init__(self, detail: str, *, code: str | None = None,
                 errors: list[dict[str, Any]] | None = None, **members: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.errors = errors
        self.members = members


class NotFound(DomainError):
    """No such resource."""

    status = 404
    code = "not-found"

    def __init__(self, kind: str, ref: object) -> None:
        shown = str(ref)
        shown = shown if len(shown) <= 64 and "\x00" not in shown else shown[:40].replace(
            "\x00", "") + "..."
        super().__init__(f"No {kind} {shown} exists.")


class Conflict(DomainError):
    """The resource's state does not allow the request now."""

    status = 409
    code = "conflict"


class Invalid(DomainError):
    """A field of the request breaks a rule; ``errors`` names it."""

    status = 422
    code = "validation"

    def __init__(self, field: str, message: str, *, detail: str | None = None,
                 code: str | None = None, **members: Any) -> None:
        super().__init__(detail or f"{field}: {message}", code=code,
                         errors=[{"field": field, "message": message}], **members)
        self.field = field


class Forbidden(DomainError):
    """The actor may not do this, by a rule of the domain (not by role alone)."""

    status = 403
    code = "forbidden"


class StaleVersion(DomainError):
    """The client acted on a version of the resource that is no longer the stored one."""

    status = 412
    code = "version-mismatch"

    def __init__(self, current: int, given: str) -> None:
        super().__init__(f"The resource is at version {current}, not {given}; fetch it again "
                         "and retry.", current_version=current)


class IllegalTransition(Conflict):
    """A move its state machine does not allow from the current state."""

    code = "illegal-transition"

    def __init__(self, detail: str, *, allowed: list[str], current: str, **members: Any) -> None:
        super().__init__(detail, allowed=allowed, current=current, **members)
