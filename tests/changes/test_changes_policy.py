"""Pure change rules, without a database: paths, windows, freezes, risk and the score, and a
property test that no sequence of moves leaves a type's model or passes a freeze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from changes_support import MODEL
from hypothesis import given, settings
from hypothesis import strategies as st

from changes.rules import approvals, freezes, lifecycle, risk, success_scores
from changes.rules.risk import DEFAULT_RISK_RULES, RiskRule
from tandem.errors import DomainError, Invalid

STATES = sorted({s for edges in MODEL.values() for edge in edges for s in edge} | {"done"})
T0 = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_each_type_path_is_the_domain_model() -> None:
    for type_, machine in lifecycle.PATHS.items():
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
        lifecycle.check_window(start, end, 72)
    else:
        with pytest.raises(Invalid) as caught:
            lifecycle.check_window(start, end, 72)
        assert caught.value.status == 422 and caught.value.errors


def test_freeze_times_coverage_and_overlap() -> None:
    assert freezes.freeze_covers([], "api") and freezes.freeze_covers(["api"], "api")
    assert not freezes.freeze_covers(["web"], "api")
    assert freezes.freeze_covers(["api"], "api", [], "production")
    assert freezes.freeze_covers(["api"], "api", ["staging"], "staging")
    assert not freezes.freeze_covers(["api"], "api", ["staging"], "production")
    hour = timedelta(hours=1)
    assert freezes.freeze_status_at(T0 + hour, T0 + 2 * hour, T0) == "scheduled"
    assert freezes.freeze_status_at(T0 - hour, T0 + hour, T0) == "active"
    assert freezes.freeze_status_at(T0 - hour, None, T0) == "active"
    assert freezes.freeze_status_at(T0 - 2 * hour, T0, T0) == "ended"
    assert freezes.freeze_in_force("scheduled", T0 - hour, T0 + hour, T0)  # the clock lags
    assert not freezes.freeze_in_force("ended", T0 - hour, None, T0)
    assert lifecycle.overlaps(T0, T0 + hour, T0 + hour / 2, None)
    assert not lifecycle.overlaps(T0, T0 + hour, T0 + hour, T0 + 2 * hour)  # touching ends


def test_first_matching_risk_rule_wins() -> None:
    facts = risk.RiskFacts(type="normal", environment="production", window_hours=6,
                             success_score=0, open_incidents=0, open_major_incidents=0)
    assert risk.assess_risk(DEFAULT_RISK_RULES, "low", facts) == (
        "moderate", "production window of 4 hours or more")
    major = risk.RiskFacts(**{**facts.__dict__, "open_incidents": 1,
                                "open_major_incidents": 1})
    assert risk.assess_risk(DEFAULT_RISK_RULES, "low", major)[0] == "very_high"
    poor = risk.RiskFacts(**{**facts.__dict__, "success_score": -12})
    assert risk.assess_risk(DEFAULT_RISK_RULES, "low", poor)[0] == "high"
    staging = risk.RiskFacts(**{**facts.__dict__, "environment": "staging"})
    assert risk.assess_risk(DEFAULT_RISK_RULES, "low", staging) == ("low", None)
    custom = [RiskRule(name="all staging", risk="high", environments=["staging"])]
    assert risk.assess_risk(custom, "low", staging) == ("high", "all staging")


def test_success_score_weights() -> None:
    assert success_scores.CLOSE_SCORE == {"successful": 3, "successful_with_issues": -2,
                                  "unsuccessful": -5}
    assert [success_scores.cause_score(p) for p in (1, 2, 3, 4, None)] == [-10, -5, -2, 0, 0]


@st.composite
def moves(draw: st.DrawFn) -> lifecycle.Move:
    type_ = draw(st.sampled_from(sorted(lifecycle.PATHS)))
    return lifecycle.Move(
        type=type_, status=draw(st.sampled_from(lifecycle.PATHS[type_].states)),
        to=draw(st.sampled_from(STATES)), approvals_received=draw(st.integers(0, 3)),
        approvals_required=draw(st.integers(0, 2)), frozen=draw(st.booleans()),
        conflicts=draw(st.integers(0, 2)), force=draw(st.booleans()),
        may_force=draw(st.booleans()), has_window=draw(st.booleans()),
        close_code=draw(st.sampled_from([None, "successful", "unsuccessful"])),
    )


@settings(max_examples=400, deadline=None)
@given(moves())
def test_an_accepted_move_obeys_model_approvals_conflicts_and_freezes(move: lifecycle.Move) -> None:
    rejected = lifecycle.move_refusal(move)
    if rejected is not None:
        assert rejected.status in (403, 409, 422)
        if rejected.status == 409:
            assert "allowed" in rejected.members
        with pytest.raises(DomainError) as raised:
            lifecycle.check_move(move)
        assert raised.value.code == rejected.code
        return
    lifecycle.check_move(move)
    assert (move.status, move.to) in MODEL[move.type]
    if move.to == "implement":
        assert not move.frozen or move.type == "emergency"
    if move.to == "scheduled":
        assert move.has_window and move.approvals_received >= move.approvals_required
        assert not move.conflicts or (move.force and move.may_force)
    if move.to == "closed":
        assert move.close_code is not None


@settings(max_examples=200, deadline=None)
@given(type_=st.sampled_from(sorted(lifecycle.PATHS)),
       steps=st.lists(st.tuples(st.sampled_from(STATES), st.booleans(), st.booleans()),
                      max_size=20))
def test_no_sequence_of_moves_leaves_the_model_or_passes_a_freeze(
        type_: str, steps: list[tuple[str, bool, bool]]) -> None:
    status, path = "new", ["new"]
    for to, frozen, approved in steps:
        move = lifecycle.Move(type=type_, status=status, to=to, frozen=frozen,
                           approvals_received=1 if approved else 0,
                           approvals_required=approvals.approvals_required(type_, 1, 1),
                           close_code="successful")
        if lifecycle.move_refusal(move) is not None:
            continue
        assert (status, to) in MODEL[type_]
        assert not (to == "implement" and frozen and type_ != "emergency")
        status = to
        path.append(to)
    if type_ != "normal":
        assert "assess" not in path
    if type_ == "standard":
        assert "authorize" not in path


def test_who_may_decide_on_a_change_and_when() -> None:
    def refusal(**overrides: object) -> str | None:
        facts: dict[str, object] = {"change_type": "normal", "status": "assess", "required": 1,
                                    "approver": "mia", "requester": "pat",
                                    "decided_already": False, **overrides}
        found = approvals.approval_refusal(**facts)  # type: ignore[arg-type]
        return None if found is None else found.code

    assert refusal() is None and refusal(status="authorize") is None
    assert refusal(status="scheduled") == "not-approvable"
    assert refusal(change_type="standard", status="new", required=0) == "not-approvable"
    assert refusal(approver="pat") == "own-change"
    assert refusal(decided_already=True) == "already-decided"
    assert [approvals.approvals_required(t, 2, 1) for t in ("normal", "emergency", "standard")] \
        == [2, 1, 0]


@pytest.mark.parametrize(("status", "given", "code"), [
    ("new", {"title": "x", "planned_start": T0}, None),
    ("closed", {"title": "x"}, "final-state"),
    ("canceled", {"description": ""}, "final-state"),
    ("new", {"title": None}, "validation"),
    ("assess", {"planned_end": None}, "validation"),
    ("scheduled", {"planned_start": T0}, "window-fixed"),
    ("scheduled", {"title": "still editable"}, None),
    ("new", {"incident_id": "6f1c1b7e-8f7e-4a55-9d1e-1d2b1f2a3b4c"}, "validation"),
])
def test_what_a_patch_may_change(status: str, given: dict[str, object], code: str | None) -> None:
    if code is None:
        lifecycle.check_edit("normal", status, given)
        return
    with pytest.raises(DomainError) as caught:
        lifecycle.check_edit("normal", status, given)
    assert caught.value.code == code


def test_freeze_windows_ends_and_the_incident_freeze_rule() -> None:
    hour = timedelta(hours=1)
    freezes.check_freeze_window(T0, T0 + hour, T0)
    for starts, ends in ((T0, T0), (T0 - 2 * hour, T0 - hour)):
        with pytest.raises(Invalid) as caught:
            freezes.check_freeze_window(starts, ends, T0)
        assert caught.value.field == "ends_at"
    assert freezes.early_end_at(T0 - hour, T0 + hour, T0) == T0
    assert freezes.early_end_at(T0 - hour, None, T0) == T0
    assert freezes.early_end_at(T0 + hour, T0 + 2 * hour, T0) == T0 + hour  # never started
    assert freezes.early_end_at(T0 - 2 * hour, T0 - hour, T0) == T0 - hour  # already over
    assert [freezes.incident_freezes_its_service(p, "in_progress") for p in (1, 2, 3)] == [
        True, True, False]
    assert not any(freezes.incident_freezes_its_service(1, s)
                   for s in ("resolved", "closed", "canceled"))
    incident = "6f1c1b7e-8f7e-4a55-9d1e-1d2b1f2a3b4c"
    other = "0b5d7c1e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
    assert freezes.freeze_spares("emergency", incident, "incident", incident)
    assert not freezes.freeze_spares("normal", incident, "incident", incident)
    assert not freezes.freeze_spares("emergency", None, "incident", None)
    # Another major incident's freeze of the same service: passed by a fix of an open one.
    assert freezes.freeze_spares("emergency", incident, "incident", other,
                                 fixes_open_incident=True)
    assert not freezes.freeze_spares("emergency", incident, "incident", other)
    # A manual freeze holds every change (a manager forces an emergency one through).
    assert not freezes.freeze_spares("emergency", incident, "manual", None,
                                     fixes_open_incident=True)
