"""The change success score of a service (ServiceNow's weights, domain.md): closing a change
successful +3, with issues -2, unsuccessful -5; a confirmed cause of a P1 -10, P2 -5, P3 -2."""

from __future__ import annotations

CLOSE_SCORE = {"successful": 3, "successful_with_issues": -2, "unsuccessful": -5}
CAUSE_SCORE = {1: -10, 2: -5, 3: -2}


def close_score(close_code: str) -> int:
    """Points for closing a change with ``close_code``."""
    return CLOSE_SCORE[close_code]


def cause_score(priority: int | None) -> int:
    """Score change for a confirmed cause: P1 -10, P2 -5, P3 -2, lower priorities nothing."""
    return CAUSE_SCORE.get(priority or 0, 0)
