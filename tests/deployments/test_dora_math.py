"""DORA arithmetic: a fixed history computed by hand, bucket edges, and properties."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployments.rules.dora import (
    BucketRule,
    BucketTable,
    DeploymentFact,
    RestoreFact,
    bucket_of,
    dora_metrics,
    interpolated_median,
    parse_window,
)

H = 3600.0
END = datetime(2026, 3, 31, tzinfo=UTC)
START = END - timedelta(days=30)  # 2026-03-01


def at(day: int, hour: float = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


# Service "api" in production, 2026-03-01 .. 2026-03-31 (30 days = 30/7 weeks).
HISTORY = [
    # D1: commits 08:00 and 10:00, live 03-02 12:00 -> lead times 4 h and 2 h.
    DeploymentFact("succeeded", at(2, 12), at(2, 12), (4 * H, 2 * H)),
    # D2: commit 03-04 12:00, live 03-05 12:00 (24 h); caused INC-1 (reported 14:00), fixed
    # by D3 going live at 16:00 -> failed, recovery 12:00 -> 16:00 = 4 h.
    DeploymentFact("succeeded", at(5, 12), at(5, 12), (24 * H,), failed=True,
                   failure_started_at=at(5, 12), recovered_at=at(5, 16)),
    # D3: the fix, shipped while INC-1 was open (rework); commit 15:00, live 16:00 (1 h).
    DeploymentFact("succeeded", at(5, 16), at(5, 16), (1 * H,), rework=True),
    # D4: failed 03-10 10:00 (never live); recovered when D5 went live at 11:30 -> 1.5 h.
    DeploymentFact("failed", None, at(10, 10), (), failed=True, failure_started_at=at(10, 10),
                   recovered_at=at(10, 11.5)),
    # D5: commit 10:30, live 11:30 (1 h).
    DeploymentFact("succeeded", at(10, 11.5), at(10, 11.5), (1 * H,)),
    # D6: commit 03-20 00:00, live 06:00 (6 h), rolled back 08:00 -> failed, recovery 2 h.
    DeploymentFact("rolled_back", at(20, 6), at(20, 6), (6 * H,), failed=True,
                   failure_started_at=at(20, 6), recovered_at=at(20, 8)),
    # D7: canceled before it ran: counts nowhere.
    DeploymentFact("canceled", None, at(21, 9)),
    # D8: live 02-20, before the window: counts nowhere.
    DeploymentFact("succeeded", at(20, 0, month=2), at(20, 0, month=2), (1 * H,), failed=True,
                   failure_started_at=at(20, 0, month=2), recovered_at=at(20, 1, month=2)),
]
INCIDENTS = [
    RestoreFact(at(5, 14), at(5, 18)),          # INC-1: 4 h
    RestoreFact(at(25, 10), at(25, 10.5)),      # INC-2: 0.5 h
    RestoreFact(at(28, 9), None),               # INC-3: still open, no sample
    RestoreFact(at(15, 0, month=2), at(15, 1, month=2)),  # before the window
]


def test_hand_computed_history() -> None:
    m = dora_metrics(HISTORY, INCIDENTS, start=START, end=END, buckets=BucketTable())

    # Frequency: D1, D2, D3, D5, D6 live in the window = 5 over 30/7 weeks = 35/30 a week.
    # Deploy days 03-02, 03-05, 03-10, 03-20 = 4 -> 4 / (30/7) = 0.933 a week: >= 1 a month
    # (0.23 a week) but < 1 a week -> medium.
    f = m["deployment_frequency"]
    assert (f.sample_size, f.bucket) == (5, "medium")
    assert f.value == pytest.approx(35 / 30)

    # Lead time: [4, 2, 24, 1, 1, 6] h -> sorted [1, 1, 2, 4, 6, 24] -> (2 + 4) / 2 = 3 h, elite.
    lt = m["lead_time"]
    assert (lt.value, lt.sample_size, lt.bucket) == (pytest.approx(3.0), 6, "elite")

    # Change failure rate: finished D1 D2 D3 D4 D5 D6 = 6; failed D2 D4 D6 = 3 -> 0.5, low.
    cfr = m["change_failure_rate"]
    assert (cfr.value, cfr.sample_size, cfr.bucket) == (pytest.approx(0.5), 6, "low")

    # Recovery: D2 4 h, D4 1.5 h, D6 2 h -> median 2 h: < 1 day -> high.
    rec = m["failed_deployment_recovery_time"]
    assert (rec.value, rec.sample_size, rec.bucket) == (pytest.approx(2.0), 3, "high")

    # Time to restore: INC-1 4 h, INC-2 0.5 h -> (0.5 + 4) / 2 = 2.25 h -> high.
    ttr = m["time_to_restore"]
    assert (ttr.value, ttr.sample_size, ttr.bucket) == (pytest.approx(2.25), 2, "high")

    # Rework: D3 of 6 finished -> 1/6 = 0.167 > 0.15 -> low.
    rw = m["deployment_rework_rate"]
    assert (rw.value, rw.sample_size, rw.bucket) == (pytest.approx(1 / 6), 6, "low")


def test_no_sample_gives_no_value_and_no_bucket() -> None:
    m = dora_metrics([], [], start=START, end=END, buckets=BucketTable())
    assert m["deployment_frequency"].value == 0.0
    assert all(x.bucket is None and x.sample_size == 0 for x in m.values())
    assert all(m[k].value is None for k in m if k != "deployment_frequency")


def test_lead_times_at_or_below_zero_are_dropped() -> None:
    facts = [DeploymentFact("succeeded", at(2), at(2), (-60.0, 0.0, 2 * H))]
    m = dora_metrics(facts, [], start=START, end=END, buckets=BucketTable())
    assert (m["lead_time"].value, m["lead_time"].sample_size) == (2.0, 1)


@pytest.mark.parametrize(("value", "bucket"), [
    (0.05, "elite"), (0.0500001, "high"), (0.10, "high"), (0.15, "medium"), (0.16, "low")])
def test_change_failure_rate_edges_are_inclusive(value: float, bucket: str) -> None:
    assert bucket_of(BucketTable().change_failure_rate, value) == bucket


@pytest.mark.parametrize(("hours", "bucket"), [
    (23.99, "elite"), (24.0, "high"), (167.9, "high"), (168.0, "medium"), (720.0, "low")])
def test_lead_time_edges_are_strict(hours: float, bucket: str) -> None:
    assert bucket_of(BucketTable().lead_time, hours) == bucket


@pytest.mark.parametrize(("days_a_week", "bucket"), [
    (5.0, "elite"), (4.9, "high"), (1.0, "high"), (0.23, "medium"), (0.22, "low")])
def test_frequency_edges(days_a_week: float, bucket: str) -> None:
    assert bucket_of(BucketTable().deployment_frequency, days_a_week) == bucket


def test_bucket_table_is_configurable() -> None:
    strict = BucketTable(lead_time=BucketRule(better="lower", inclusive=False, elite=1,
                                              high=2, medium=3))
    facts = [DeploymentFact("succeeded", at(2), at(2), (3 * H,))]
    assert dora_metrics(facts, [], start=START, end=END,
                        buckets=strict)["lead_time"].bucket == "low"


@pytest.mark.parametrize(("text", "span"), [
    ("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("4w", timedelta(weeks=4))])
def test_windows(text: str, span: timedelta) -> None:
    assert parse_window(text) == span


@pytest.mark.parametrize("text", ["", "0d", "30", "d30", "1y", "-3d", "99999d"])
def test_bad_windows(text: str) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(text)


# --- properties --------------------------------------------------------------------------------

offsets = st.floats(min_value=0, max_value=30 * 24 - 1, allow_nan=False)
outcomes = st.sampled_from(["succeeded", "failed", "rolled_back", "canceled", None])


@st.composite
def facts(draw: st.DrawFn) -> DeploymentFact:
    outcome = draw(outcomes)
    finished = START + timedelta(hours=draw(offsets))
    deployed = finished if outcome in ("succeeded", "rolled_back") else None
    failed = outcome in ("failed", "rolled_back") or draw(st.booleans())
    recovered = (finished + timedelta(hours=draw(st.floats(0, 500)))
                 if failed and draw(st.booleans()) else None)
    return DeploymentFact(
        outcome, deployed, finished if outcome else None,
        tuple(draw(st.lists(st.floats(-1e5, 1e7, allow_nan=False), max_size=4))),
        failed=failed, failure_started_at=finished if failed else None,
        recovered_at=recovered, rework=draw(st.booleans()))


@given(st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=50))
def test_median_matches_percentile_cont(values: list[float]) -> None:
    assert interpolated_median(values) == pytest.approx(statistics.median(values))
    assert min(values) <= interpolated_median(values) <= max(values)


@given(st.lists(facts(), max_size=40), st.randoms())
def test_metrics_do_not_depend_on_order(history: list[DeploymentFact], rnd: object) -> None:
    shuffled = list(history)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = dora_metrics(history, [], start=START, end=END, buckets=BucketTable())
    b = dora_metrics(shuffled, [], start=START, end=END, buckets=BucketTable())
    assert a == b


@given(st.lists(facts(), max_size=40))
def test_rates_are_ratios_of_counted_deployments(history: list[DeploymentFact]) -> None:
    m = dora_metrics(history, [], start=START, end=END, buckets=BucketTable())
    finished = [f for f in history if f.outcome in ("succeeded", "failed", "rolled_back")]
    for name in ("change_failure_rate", "deployment_rework_rate"):
        metric = m[name]
        assert metric.sample_size == len(finished)
        if finished:
            assert metric.value is not None and 0.0 <= metric.value <= 1.0
        else:
            assert metric.value is None and metric.bucket is None
    failures = sum(f.failed for f in finished)
    if finished:
        assert m["change_failure_rate"].value == pytest.approx(failures / len(finished))


@given(st.lists(facts(), max_size=40), facts())
def test_one_more_successful_deployment_never_lowers_frequency(
        history: list[DeploymentFact], extra: DeploymentFact) -> None:
    before = dora_metrics(history, [], start=START, end=END, buckets=BucketTable())
    after = dora_metrics([*history, extra], [], start=START, end=END, buckets=BucketTable())
    f0, f1 = before["deployment_frequency"], after["deployment_frequency"]
    assert f1.sample_size - f0.sample_size == (1 if extra.outcome in ("succeeded",
                                                                       "rolled_back") else 0)
    assert f1.value >= f0.value  # type: ignore[operator]


@given(st.lists(facts(), max_size=40))
def test_medians_stay_within_their_samples(history: list[DeploymentFact]) -> None:
    m = dora_metrics(history, [], start=START, end=END, buckets=BucketTable())
    lead = [s / H for f in history if f.deployed_at for s in f.lead_times_s if s > 0]
    assert m["lead_time"].sample_size == len(lead)
    if lead:
        assert min(lead) <= m["lead_time"].value <= max(lead)  # type: ignore[operator]
    rec = m["failed_deployment_recovery_time"]
    if rec.value is not None:
        assert rec.value >= 0 and rec.bucket in ("elite", "high", "medium", "low")
