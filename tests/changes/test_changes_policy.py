"""Pure change rules, without a database: paths, windows, freezes, risk and the score, and a
property test that no sequence of moves leaves a type's model or passes a freeze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from changes_support import MODEL
from hypothesis import given, settings
from hypothesis import strategies as st

from changes import policy
from changes.config import DEFAULT_RISK_RULES, RiskRule
from tandem.problems import Problem

STATES = sorted({s for edges in MODEL.values() for edge in edges for s in edge} | {"done"})
T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_each_type_path_is_the_domain_model() -> None:
    for type_, machine in policy.PATHS.items():
        edges = {(s, t) for s in machine.states for t in machine.allowed(s)}
        assert edges == MODEL[type_], type_


@pytest.mark.parametrize(("start", "end", "ok"), [
    (None, None, True),
    (T0, T0 + timedelta(hours=1), True),
    (T0, T0, False),
    (T0, T0 - timedelta(minutes=1), False),
    (T0, T0 + timedelta(hours=73), False),
    (T0, None, False),
    (None, T0, False),
])
def test_window_must_end_after_it_starts_and_stay_bounded(
        start: datetime | None, end: datetime | None, ok: bool) -> None:
    if ok:
        policy.check_window(start, end, 72)
    else:
        with pytest.raises(Problem) as caught:
            policy.check_window(start, end, 72)
        assert caught.value.status == 422 and caught.value.errors


def test_freeze_times_coverage_and_overlap() -> None:
    assert policy.freeze_covers([], "api") and policy.freeze_covers(["api"], "api")
    assert not policy.freeze_covers(["web"], "api")
    hour = timedelta(hours=1)
    assert policy.freeze_status_at(T0 + hour, T0 + 2 * hour, T0) == "scheduled"
    assert policy.freeze_status_at(T0 - hour, T0 + hour, T0) == "active"
    assert policy.freeze_status_at(T0 - hour, None, T0) == "active"
    assert policy.freeze_status_at(T0 - 2 * hour, T0, T0) == "ended"
    assert policy.freeze_in_force("scheduled", T0 - hour, T0 + hour, T0)  # the clock lags
    assert not policy.freeze_in_force("ended", T0 - hour, None, T0)
    assert policy.overlaps(T0, T0 + hour, T0 + hour / 2, None)
    assert not policy.overlaps(T0, T0 + hour, T0 + hour, T0 + 2 * hour)  # touching ends


def test_first_matching_risk_rule_wins() -> None:
    facts = policy.RiskFacts(type="normal", environment="production", window_hours=6,
                             success_score=0, open_incidents=0, open_major_incidents=0)
    assert policy.assess_risk(DEFAULT_RISK_RULES, "low", facts) == (
        "moderate", "production window of 4 hours or more")
    major = policy.RiskFacts(**{**facts.__dict__, "open_incidents": 1,
                                "open_major_incidents": 1})
    assert policy.assess_risk(DEFAULT_RISK_RULES, "low", major)[0] == "very_high"
    poor = policy.RiskFacts(**{**facts.__dict__, "success_score": -12})
    assert policy.assess_risk(DEFAULT_RISK_RULES, "low", poor)[0] == "high"
    staging = policy.RiskFacts(**{**facts.__dict__, "environment": "staging"})
    assert policy.assess_risk(DEFAULT_RISK_RULES, "low", staging) == ("low", None)
    custom = [RiskRule(name="all staging", risk="high", environments=["staging"])]
    assert policy.assess_risk(custom, "low", staging) == ("high", "all staging")


def test_success_score_weights() -> None:
    assert policy.CLOSE_SCORE == {"successful": 3, "successful_with_issues": -2,
                                  "unsuccessful": -5}
    assert [policy.cause_score(p) for p in (1, 2, 3, 4, None)] == [-10, -5, -2, 0, 0]


@st.composite
def moves(draw: st.DrawFn) -> policy.Move:
    type_ = draw(st.sampled_from(sorted(policy.PATHS)))
    return policy.Move(
        type=type_, status=draw(st.sampled_from(policy.PATHS[type_].states)),
        to=draw(st.sampled_from(STATES)), approvals_received=draw(st.integers(0, 3)),
        approvals_required=draw(st.integers(0, 2)), frozen=draw(st.booleans()),
        conflicts=draw(st.integers(0, 2)), force=draw(st.booleans()),
        may_force=draw(st.booleans()), has_window=draw(st.booleans()),
        close_code=draw(st.sampled_from([None, "successful", "unsuccessful"])),
    )


@settings(max_examples=400, deadline=None)
@given(moves())
def test_an_accepted_move_obeys_model_approvals_conflicts_and_freezes(move: policy.Move) -> None:
    rejected: Problem | None = None
    try:
        policy.check_move(move)
    except Problem as problem:
        rejected = problem
    if rejected is not None:
        assert rejected.status in (403, 409, 422)
        if rejected.status == 409:
            assert "allowed" in rejected.extra
        return
    assert (move.status, move.to) in MODEL[move.type]
    if move.to == "implement":
        assert not move.frozen or move.type == "emergency"
    if move.to == "scheduled":
        assert move.has_window and move.approvals_received >= move.approvals_required
        assert not move.conflicts or (move.force and move.may_force)
    if move.to == "closed":
        assert move.close_code is not None


@settings(max_examples=200, deadline=None)
@given(type_=st.sampled_from(sorted(policy.PATHS)),
       steps=st.lists(st.tuples(st.sampled_from(STATES), st.booleans(), st.booleans()),
                      max_size=20))
def test_no_sequence_of_moves_leaves_the_model_or_passes_a_freeze(
        type_: str, steps: list[tuple[str, bool, bool]]) -> None:
    status, path = "new", ["new"]
    for to, frozen, approved in steps:
        move = policy.Move(type=type_, status=status, to=to, frozen=frozen,
                           approvals_received=1 if approved else 0,
                           approvals_required=policy.approvals_required(type_, 1, 1),
                           close_code="successful")
        try:
            policy.check_move(move)
        except Problem:
            continue
        assert (status, to) in MODEL[type_]
        assert not (to == "implement" and frozen and type_ != "emergency")
        status = to
        path.append(to)
    if type_ != "normal":
        assert "assess" not in path
    if type_ == "standard":
        assert "authorize" not in path
