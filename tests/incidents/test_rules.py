"""Pure incident rules, without a database: lifecycle, priority, SLA, statistics, settings."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from incidents.config import (
    DEFAULT_PRIORITY_MATRIX,
    IncidentsSettings,
    parse_sla_targets,
)
from incidents.errors import MoveFieldInvalid
from incidents.events import EVENT_DATA
from incidents.models import Incident
from incidents.rules.lifecycle import (
    LIFECYCLE,
    OnHoldReason,
    ResolutionCode,
    apply_move,
    check_move,
)
from incidents.rules.policy import derive_priority, is_major, sla_due
from incidents.rules.stats import percentile, summarize
from tandem.errors import IllegalTransition
from tandem.settings import parse_routing_keys

DOMAIN_MOVES = {
    "new": ["acknowledged", "canceled", "in_progress", "resolved"],
    "acknowledged": ["canceled", "in_progress", "resolved"],
    "in_progress": ["canceled", "on_hold", "resolved"],
    "on_hold": ["canceled", "in_progress"],
    "resolved": ["closed", "in_progress"],
    "closed": [],
    "canceled": [],
}


def test_lifecycle_is_the_domain_table() -> None:
    assert {s: LIFECYCLE.allowed(s) for s in LIFECYCLE.states} == DOMAIN_MOVES


def new_incident() -> Incident:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Incident(number="INC0000001", title="t", description="", service="api",
                    environment="production", impact=2, urgency=2, priority=3, major=False,
                    status="new", reported_by="x", reported_at=now)


@given(st.lists(st.integers(min_value=0, max_value=10), max_size=40))
def test_random_walks_keep_the_incident_consistent(choices: list[int]) -> None:
    incident = new_incident()
    reopens = 0
    clock = incident.reported_at
    for choice in choices:
        allowed = LIFECYCLE.allowed(incident.status)
        if not allowed:
            # Final states allow nothing, and say so with a 409.
            with pytest.raises(Exception, match="cannot move"):
                LIFECYCLE.check(incident.status, "in_progress")
            break
        to = allowed[choice % len(allowed)]
        acknowledged = incident.acknowledged_at
        reopens += incident.status == "resolved" and to == "in_progress"
        clock += timedelta(minutes=1)
        apply_move(incident, to, on_hold_reason=_Reason("awaiting_vendor"),  # type: ignore[arg-type]
                   resolution_code=_Reason("solution_provided"),  # type: ignore[arg-type]
                   resolution_notes="n", now=clock)
        assert incident.status == to
        assert incident.reopen_count == reopens
        assert (incident.resolved_at is not None) == (to in ("resolved", "closed"))
        assert (incident.on_hold_reason is not None) == (to == "on_hold")
        assert (incident.closed_at is not None) == (to in ("closed", "canceled"))
        if acknowledged is not None:
            assert incident.acknowledged_at == acknowledged
        if incident.resolved_at is not None:
            assert incident.mitigated_at is not None
            assert incident.mitigated_at <= incident.resolved_at


@pytest.mark.parametrize(("status", "to", "fields", "field"), [
    ("in_progress", "on_hold", {}, "on_hold_reason"),
    ("new", "acknowledged", {"on_hold_reason": OnHoldReason.awaiting_vendor}, "on_hold_reason"),
    ("new", "resolved", {"resolution_notes": "fixed"}, "resolution_code"),
    ("new", "resolved", {"resolution_code": ResolutionCode.duplicate}, "resolution_notes"),
    ("new", "canceled", {"resolution_code": ResolutionCode.duplicate}, "resolution_code"),
    ("on_hold", "in_progress", {"resolution_notes": "x"}, "resolution_notes"),
])
def test_a_move_refuses_missing_or_misplaced_fields(status: str, to: str, fields: dict[str, Any],
                                                    field: str) -> None:
    given: dict[str, Any] = {"on_hold_reason": None, "resolution_code": None,
                             "resolution_notes": None, **fields}
    with pytest.raises(MoveFieldInvalid) as refused:
        check_move(status, to, **given)
    assert refused.value.field == field and refused.value.status == 422
    assert [e["field"] for e in refused.value.errors or []] == [field]


def test_an_illegal_move_names_the_allowed_ones() -> None:
    with pytest.raises(IllegalTransition) as refused:
        check_move("on_hold", "resolved", on_hold_reason=None,
                   resolution_code=ResolutionCode.duplicate, resolution_notes="x")
    assert refused.value.members["allowed"] == ["canceled", "in_progress"]
    check_move("on_hold", "in_progress", on_hold_reason=None, resolution_code=None,
               resolution_notes=None)


class _Reason:
    def __init__(self, value: str) -> None:
        self.value = value


def test_default_matrix_is_servicenows() -> None:
    table = {(i, u): derive_priority(DEFAULT_PRIORITY_MATRIX, i, u)
             for i in (1, 2, 3) for u in (1, 2, 3)}
    assert table == {(1, 1): 1, (1, 2): 2, (1, 3): 3, (2, 1): 2, (2, 2): 3, (2, 3): 4,
                     (3, 1): 3, (3, 2): 4, (3, 3): 5}
    with pytest.raises(ValueError, match="1 to 3"):
        derive_priority(DEFAULT_PRIORITY_MATRIX, 0, 4)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
def test_more_impact_or_urgency_never_lowers_priority(i1: int, u1: int, i2: int, u2: int) -> None:
    if i1 <= i2 and u1 <= u2:
        assert derive_priority(DEFAULT_PRIORITY_MATRIX, i1, u1) <= \
            derive_priority(DEFAULT_PRIORITY_MATRIX, i2, u2)


@given(st.integers(1, 5), st.booleans())
def test_major_is_p1_p2_or_declared(priority: int, declared: bool) -> None:
    assert is_major(priority, declared) == (priority <= 2 or declared)


@given(st.integers(1, 5), st.integers(1, 10**6), st.integers(1, 10**7))
def test_sla_due_is_reported_plus_target(priority: int, response: int, resolution: int) -> None:
    reported = datetime(2026, 3, 1, tzinfo=UTC)
    targets = {priority: (response, resolution)}
    assert sla_due(reported, priority, targets) == (reported + timedelta(seconds=response),
                                                    reported + timedelta(seconds=resolution))
    assert sla_due(reported, priority, {}) == (None, None)


def test_sla_targets_setting_parses_the_domain_defaults() -> None:
    targets = parse_sla_targets("1=15m/4h,2=30m/8h,3=4h/3d,4=1d/5d")
    assert targets[1] == (900, 14400) and targets[4] == (86400, 432000)
    assert targets[5] == (None, None)
    assert parse_sla_targets("5=-/2h")[5] == (None, 7200)
    for bad in ("1=15m", "9=1m/2m", "1=soon/later"):
        with pytest.raises(ValueError):  # noqa: PT011 - any parse error will do
            parse_sla_targets(bad)


def test_routing_keys_setting() -> None:
    assert parse_routing_keys(" k1=api , k2=web@staging,") == {
        "k1": ("api", "production"), "k2": ("web", "staging")}
    for bad in ("k1", "=api", "k1=API", "k1=api@moon"):
        with pytest.raises(ValueError):  # noqa: PT011 - any parse error will do
            parse_routing_keys(bad)
    with pytest.raises(ValidationError):
        IncidentsSettings(routing_keys="k1")
    with pytest.raises(ValidationError):
        IncidentsSettings(priority_matrix=[[1, 2, 3]])
    assert IncidentsSettings(suspect_window="2h").suspect_window_delta == timedelta(hours=2)


durations = st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1,
                     max_size=60)


@given(durations)
def test_summary_orders_and_bounds(values: list[float]) -> None:
    s = summarize(values)
    assert s.count == len(values)
    assert s.mean is not None and s.median is not None and s.p90 is not None
    low, high = min(values), max(values)
    assert low - 1e-3 <= s.median <= s.p90 + 1e-3 <= high + 2e-3
    assert low - 1e-3 <= s.mean <= high + 1e-3
    assert s.median == pytest.approx(statistics.median(values), abs=1e-3)


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([1, 2, 3, 4], 0.9) == pytest.approx(3.7)
    assert percentile([42], 0.9) == 42
    assert summarize([]).count == 0 and summarize([]).median is None


def test_every_published_type_has_a_data_schema() -> None:
    assert set(EVENT_DATA) == {f"tandem.incident.{v}" for v in (
        "created", "updated", "transitioned", "annotated", "sla_breached", "suspects_found",
        "cause_confirmed")} | {f"tandem.review.{v}" for v in (
        "created", "transitioned", "factor_added", "action_added", "action_closed",
        "due_breached", "timeline_updated")}
    for type_, model in EVENT_DATA.items():
        schema = model.model_json_schema(by_alias=True)
        assert type_.split(".")[1] in schema["required"]
    transitioned = EVENT_DATA["tandem.incident.transitioned"].model_json_schema(by_alias=True)
    assert {"from", "to", "reason"} <= set(transitioned["properties"])
