"""Who works an incident nobody was assigned to: its service's application management team
(the catalog's ``operations_team``), else the team that owns the service."""

from __future__ import annotations


def assignment_group(given: str | None, *, operations_team: str | None,
                     owner_team: str | None) -> str | None:
    """The incident's assignment group: the one given, else the service's operations team,
    else its owner team, else none (an unowned service)."""
    return given or operations_team or owner_team
