"""What the notifier refuses, as typed errors (``tandem.problems`` answers them)."""

from __future__ import annotations

from tandem.errors import Conflict, Invalid


class DestinationRefused(Invalid):
    """A receiver URL the notifier will not call (not a URL, not https, or an address of its
    own host or network: no server-side request forgery)."""

    code = "destination-refused"

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field, why, detail=f"{field}: {why}.")


class ManagedByCatalog(Conflict):
    """A team's subscription follows the team's ``notify`` in the catalog; edit it there."""

    code = "managed-by-catalog"

    def __init__(self, number: str, team: str) -> None:
        super().__init__(f"{number} is team {team}'s notify subscription from the catalog; "
                         "change the team's notify there (PATCH /api/v1/teams/{team} on the "
                         "catalog).", team=team)
