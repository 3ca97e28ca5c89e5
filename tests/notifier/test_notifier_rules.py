"""The notifier's pure rules: backoff and its limits, which subscriptions want an event, the
destination guard, Standard Webhooks signatures (checked by the ``standardwebhooks`` library)
and the chat message."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from notifier.rules.destinations import DestinationPolicy, destination_problem, parse
from notifier.rules.matching import SubscriptionFilter, event_facts, type_problem, wants
from notifier.rules.messages import escape, resource_link, slack_message
from notifier.rules.retries import RetryPolicy
from notifier.rules.signing import secret_from, signed_headers

POLICY = RetryPolicy(base_s=5, max_interval_s=3600, window_s=86400, disable_after_s=5 * 86400)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.integers(min_value=1, max_value=60), st.floats(min_value=0, max_value=0.999))
def test_backoff_doubles_with_jitter_up_to_its_cap(attempts: int, rand: float) -> None:
    step = min(5 * 2 ** (attempts - 1), 3600)
    delay = POLICY.delay(attempts, rand).total_seconds()
    assert step / 2 <= delay < step + 1e-9


def test_a_delivery_is_retried_for_its_window_then_given_up() -> None:
    assert POLICY.next_attempt(queued_at=T0, now=T0, attempts=1, rand=0) == T0 + timedelta(
        seconds=2.5)
    late = T0 + timedelta(hours=23, minutes=59)
    assert POLICY.next_attempt(queued_at=T0, now=late, attempts=12, rand=0) is None


def test_a_subscription_failing_five_days_is_disabled() -> None:
    assert not POLICY.disables(failing_since=None, now=T0)
    assert not POLICY.disables(failing_since=T0, now=T0 + timedelta(days=4, hours=23))
    assert POLICY.disables(failing_since=T0, now=T0 + timedelta(days=5))


def _incident(service: str = "payments", priority: int = 1) -> dict[str, object]:
    return {"incident": {"service": service, "priority": priority, "number": "INC0000042",
                         "title": "Checkout fails", "status": "new", "major": True,
                         "environment": "production"}}


def test_filters_by_type_service_team_and_priority() -> None:
    facts = event_facts("tandem.incident.created", _incident())
    teams = {"payments": ("payments-dev", "payments-ops")}
    assert wants(SubscriptionFilter(), facts, teams)
    assert wants(SubscriptionFilter(types=("tandem.incident.*",)), facts, teams)
    assert not wants(SubscriptionFilter(types=("tandem.deployment.*",)), facts, teams)
    assert wants(SubscriptionFilter(services=("payments",)), facts, teams)
    assert not wants(SubscriptionFilter(services=("search",)), facts, teams)
    assert wants(SubscriptionFilter(teams=("payments-ops",)), facts, teams)
    assert not wants(SubscriptionFilter(teams=("search-ops",)), facts, teams)
    assert wants(SubscriptionFilter(min_priority=1), facts, teams)
    p3 = event_facts("tandem.incident.created", _incident(priority=3))
    assert not wants(SubscriptionFilter(min_priority=2), p3, teams)
    deploy = event_facts("tandem.deployment.transitioned",
                         {"deployment": {"service": "payments", "status": "failed"}})
    assert not wants(SubscriptionFilter(min_priority=2), deploy, teams)  # carries no priority
    every = event_facts("tandem.freeze.created", {"freeze": {"services": []}})
    assert wants(SubscriptionFilter(services=("search",)), every, teams)
    team = event_facts("tandem.team.updated", {"team": {"name": "payments-ops"}})
    assert wants(SubscriptionFilter(teams=("payments-ops",)), team, teams)
    assert not wants(SubscriptionFilter(services=("payments",)), team, teams)


def test_type_patterns_name_documented_types() -> None:
    assert type_problem("tandem.incident.created") is None
    assert type_problem("tandem.change.*") is None
    assert type_problem("tandem.*.*") is not None
    assert type_problem("tandem.incident.exploded") is not None


@pytest.mark.parametrize(("url", "addresses", "policy", "refused"), [
    ("https://hooks.example.com/x", ["93.184.216.34"], DestinationPolicy(), False),
    ("http://hooks.example.com/x", ["93.184.216.34"], DestinationPolicy(), True),
    ("http://hooks.example.com/x", ["93.184.216.34"], DestinationPolicy(allow_http=True), False),
    ("http://127.0.0.1:9/x", ["127.0.0.1"], DestinationPolicy(), True),
    ("http://127.0.0.1:9/x", ["127.0.0.1"], DestinationPolicy(allow_loopback=True), False),
    ("http://localhost:9/x", [], DestinationPolicy(), True),
    ("https://0.0.0.0/x", ["0.0.0.0"], DestinationPolicy(), True),
    ("https://metadata/x", ["169.254.169.254"], DestinationPolicy(), True),
    ("https://intranet/x", ["10.1.2.3"], DestinationPolicy(), True),
    ("https://intranet/x", ["10.1.2.3"], DestinationPolicy(allow_private=True), False),
    ("https://cgnat/x", ["100.64.0.1"], DestinationPolicy(), True),
    ("https://v6/x", ["fd00::1"], DestinationPolicy(), True),
    ("https://rebound/x", ["93.184.216.34", "192.168.1.1"], DestinationPolicy(), True),
])
def test_the_destination_guard(url: str, addresses: list[str], policy: DestinationPolicy,
                               refused: bool) -> None:
    parts, why = parse(url)
    assert parts is not None, why
    problem = destination_problem(parts, [ipaddress.ip_address(a) for a in addresses], policy)
    assert (problem is not None) is refused, problem


@pytest.mark.parametrize("url", ["ftp://x/y", "https://", "https://h:0/", "https://h/#frag",
                                 "https://h:99999/"])
def test_urls_that_are_no_receivers(url: str) -> None:
    assert parse(url)[0] is None


@given(st.binary(min_size=1, max_size=64), st.text(max_size=500))
def test_signatures_verify_with_the_standard_webhooks_library(key: bytes, text: str) -> None:
    secret = secret_from(key)
    body = json.dumps({"text": text}).encode()  # the library reads the body as JSON
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers(secret, "msg_1", now, body)
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(secret).verify(body, headers)  # raises on a bad signature


def test_the_chat_message_names_what_where_priority_status_who_and_links() -> None:
    event = {"type": "tandem.incident.created", "source": "/tandem/incidents", "actor": "alice",
             "subject": "abc", "data": _incident()}
    message = slack_message(event, "https://tandem.example.com/incidents/abc")
    assert message["text"].startswith(":red_circle: P1 major incident INC0000042 opened on "
                                      "payments: Checkout fails (by alice)")
    assert "<https://tandem.example.com/incidents/abc|INC0000042>" in message["text"]
    failed = slack_message({"type": "tandem.deployment.transitioned", "actor": "ci",
                            "data": {"deployment": {"number": "DEP0000001", "service": "pay",
                                                    "status": "failed",
                                                    "software_version": "2.4.1"},
                                     "from": "in_progress", "to": "failed"}}, None)
    assert failed["text"].startswith(":x: Deployment DEP0000001 of 2.4.1 moved from "
                                     "in_progress to failed on pay (by ci)")
    freeze = slack_message({"type": "tandem.freeze.created", "actor": "incidents",
                            "data": {"freeze": {"number": "FRZ0000001", "services": ["pay"],
                                                "status": "active", "reason": "P1"}}}, None)
    assert "Freeze FRZ0000001 declared on pay: P1" in freeze["text"]
    overdue = slack_message({"type": "tandem.review.due_breached", "actor": "tandem-incidents",
                             "data": {"review": {"number": "PIR0000001", "service": "pay",
                                                 "incident_number": "INC0000042",
                                                 "incident_title": "Checkout fails",
                                                 "status": "in_progress"}}}, None)
    assert overdue["text"].startswith(":warning: Post-incident review PIR0000001 of "
                                      "INC0000042 is past its due date on pay: Checkout fails")
    assert type_problem("tandem.review.*") is None
    assert escape("<a & b>") == "&lt;a &amp; b&gt;"
    assert resource_link("http://127.0.0.1:{port}/api/v1/{plural}/{id}",
                         source="/tandem/changes", aggregate="freeze", subject="f1",
                         ports={"changes": 8002}) == "http://127.0.0.1:8002/api/v1/freezes/f1"
