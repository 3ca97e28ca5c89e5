"""The notifier's Prometheus metrics (served at ``/metrics`` with the platform's)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "tandem_notifier_deliveries_total",
    "Delivery attempts by outcome: delivered, retrying, failed (retry window over), gone (410)",
    ["outcome"],
)
ATTEMPT_LATENCY = Histogram(
    "tandem_notifier_attempt_duration_seconds", "One delivery attempt, sending to answer",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_LAG = Histogram(
    "tandem_notifier_delivery_lag_seconds", "From an event's time to its delivery",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 3600, 86400),
)
BACKLOG = Gauge("tandem_notifier_backlog", "Pending deliveries per active subscription",
                ["subscription"])

_shown: set[str] = set()


def set_backlog(pending: Mapping[uuid.UUID, int]) -> None:
    """The backlog gauge as the delivery log says now (emptied subscriptions leave it)."""
    now = {str(k): v for k, v in pending.items()}
    for gone in _shown - now.keys():
        BACKLOG.remove(gone)
    for subscription, count in now.items():
        BACKLOG.labels(subscription).set(count)
    _shown.clear()
    _shown.update(now)
