"""Prometheus metrics shared by every service, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "tandem_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "tandem_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
OUTBOX_PENDING = Gauge(
    "tandem_outbox_pending", "Outbox rows seen unpublished by the relay", ["service"]
)
EVENTS_PUBLISHED = Counter("tandem_events_published_total", "Events relayed to Kafka", ["service"])
EVENTS_CONSUMED = Counter(
    "tandem_events_consumed_total", "Events seen by a consumer, by outcome", ["consumer", "outcome"]
)
DEAD_LETTERS = Gauge(
    "tandem_dead_letters", "Dead letters not yet replayed or discarded (dead or held)",
    ["consumer"]
)
HISTORY_REPUBLISHED = Counter(
    "tandem_history_republished_total",
    "Retained events published again because the broker had lost them", ["service"]
)
