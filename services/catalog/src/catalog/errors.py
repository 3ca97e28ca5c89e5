"""What the catalog refuses, as typed errors (``tandem.problems`` answers them).

Each is a kind of :mod:`tandem.errors`, so its HTTP status and problem type follow from the
kind; a caller that expects one refusal catches exactly that class.
"""

from __future__ import annotations

from dataclasses import dataclass

from tandem.errors import Conflict, DomainError, Invalid


@dataclass(frozen=True)
class DescriptorProblem:
    """One thing wrong with one document of an import: which document (numbered from 1 in the
    request, and its ``metadata.name`` when it has one), which field, and what is wrong."""

    document: int
    name: str | None
    field: str
    message: str

    def line(self) -> str:
        named = f" ({self.name})" if self.name else ""
        where = f"{self.field}: " if self.field else ""
        return f"document {self.document}{named}: {where}{self.message}"


class DescriptorsInvalid(DomainError):
    """An import whose descriptors are not all valid: nothing of it is imported; ``errors``
    names each document and field."""

    status = 422
    code = "descriptor-invalid"

    def __init__(self, problems: list[DescriptorProblem]) -> None:
        shown = "; ".join(p.line() for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"The descriptors are not valid, so nothing was imported: {shown}{more}.",
            errors=[{"document": p.document, "name": p.name, "field": p.field,
                     "message": p.message} for p in problems])
        self.problems = problems


class ServiceExists(Conflict):
    """A service of that name is already in the catalog (edit it instead)."""

    code = "service-exists"

    def __init__(self, name: str, number: str) -> None:
        super().__init__(f"The catalog already has a service named {name} ({number}); edit it "
                         "with PATCH.", existing=number)


class TeamExists(Conflict):
    """A team of that name is already in the catalog (edit it instead)."""

    code = "team-exists"

    def __init__(self, name: str, number: str) -> None:
        super().__init__(f"The catalog already has a team named {name} ({number}); edit it "
                         "with PATCH.", existing=number)


class TeamUnknown(Invalid):
    """A service names a team the catalog does not have."""

    code = "team-unknown"

    def __init__(self, field: str, team: str) -> None:
        super().__init__(field, f"no team named {team} in the catalog",
                         detail=f"{field}: the catalog has no team named {team}; create it "
                                "first (POST /api/v1/teams) or import its Group descriptor.")
