"""Post-incident reviews: which incidents get one, the review's lifecycle, its due date."""

from __future__ import annotations

from datetime import datetime, timedelta

from tandem.transitions import StateMachine

#: open (nobody has written anything yet) -> in_progress (a factor or an action was added,
#: or someone started it) -> completed.
REVIEW_LIFECYCLE = StateMachine("review", {
    "open": {"in_progress", "completed"},
    "in_progress": {"completed"},
    "completed": set(),
})
ACTION_STATES = ("open", "closed")


def needs_review(*, major: bool, to: str) -> bool:
    """A major incident that is resolved gets a review."""
    return major and to == "resolved"


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` moved on by ``days`` working days (Monday to Friday), the same time of day;
    from a weekend the count starts on Monday."""
    moment = start
    while moment.weekday() >= 5:
        moment += timedelta(days=1)
    left = days
    while left > 0:
        moment += timedelta(days=1)
        if moment.weekday() < 5:
            left -= 1
    return moment
