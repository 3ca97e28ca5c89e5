"""When a failed delivery is tried again, and when the notifier gives up.

Exponential backoff with full jitter between half and the whole step: the n-th retry waits
``base * 2**(n-1)`` capped at ``max_interval`` (times a factor in [0.5, 1)), so receivers coming
back from an outage are not hit by every sender at the same instant. A delivery is retried for
``window`` after its event was first queued, then given up; a subscription whose every attempt
has failed for ``disable_after`` is disabled.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float
    max_interval_s: float
    window_s: float
    disable_after_s: float

    def delay(self, attempts: int, rand: float | None = None) -> timedelta:
        """The wait after the ``attempts``-th failed attempt (1 = the first)."""
        step = min(self.base_s * 2 ** max(attempts - 1, 0), self.max_interval_s)
        factor = 0.5 + 0.5 * (random.random() if rand is None else rand)
        return timedelta(seconds=step * factor)

    def next_attempt(self, *, queued_at: datetime, now: datetime, attempts: int,
                     rand: float | None = None) -> datetime | None:
        """When to try again after the ``attempts``-th failure, or None: the window is over."""
        at = now + self.delay(attempts, rand)
        if at > queued_at + timedelta(seconds=self.window_s):
            return None
        return at

    def disables(self, *, failing_since: datetime | None, now: datetime) -> bool:
        """A subscription failing since ``failing_since`` is to be disabled now."""
        return (failing_since is not None
                and now - failing_since >= timedelta(seconds=self.disable_after_s))


#: Answers that say the receiver is gone for good: its subscription is disabled at once.
GONE = 410


def succeeded(status_code: int) -> bool:
    """A receiver took the delivery (any 2xx)."""
    return 200 <= status_code < 300
