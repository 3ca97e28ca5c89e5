"""tandem.dora: a fixed history computed by hand, bucket edges, and properties."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tandem.dora import (
    BucketRule,
    BucketTable,
    DeploymentFact,
    DeploymentRecord,
    IncidentRecord,
    bucket_of,
    dora_metrics,
    interpolated_median,
    parse_window,
    report,
)

H = 3600.0
END = datetime(2026, 3, 31, tzinfo=UTC)
START = END - timedelta(days=30)  # 2026-03-01


def at(day: int, hour: float = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


def live(id_: str, when: datetime, lead_h: tuple[float, ...], **kw: object) -> DeploymentRecord:
    return DeploymentRecord(id_, "api", kw.pop("status", "succeeded"),  # type: ignore[arg-type]
                            deployed_at=when, finished_at=when,
                            lead_times_s=tuple(h * H for h in lead_h), **kw)  # type: ignore[arg-type]


# Service "api" in production, 2026-03-01 .. 2026-03-31 (30 days = 30/7 weeks), as the
# deployments service and the board both record it; failures and recoveries are derived.
RECORDS = [
    # D1: commits 08:00 and 10:00, live 03-02 12:00 -> lead times 4 h and 2 h.
    live("D1", at(2, 12), (4, 2)),
    # D2: commit 03-04 12:00, live 03-05 12:00 (24 h); INC-1 (reported 14:00) names it its
    # cause: it needed intervention from 12:00; D3 live at 16:00 is the fix -> 4 h.
    live("D2", at(5, 12), (24,)),
    # D3: the fix forward naming INC-1 (rework); commit 15:00, live 16:00 (1 h).
    live("D3", at(5, 16), (1,), rework=True),
    # D4: failed 03-10 10:00, never live: a failed attempt, beside the rate, not in it; the
    # service recovered when D5 went live at 11:30 -> 1.5 h.
    DeploymentRecord("D4", "api", "failed", finished_at=at(10, 10)),
    # D5: commit 10:30, live 11:30 (1 h).
    live("D5", at(10, 11.5), (1,)),
    # D6: commit 03-20 00:00, live 06:00 (6 h), rolled back 08:00 -> failed, recovery 2 h.
    live("D6", at(20, 6), (6,), status="rolled_back", rolled_back_at=at(20, 8)),
    # D7: canceled before it ran: counts nowhere.
    DeploymentRecord("D7", "api", "canceled", finished_at=at(21, 9)),
    # D8: live 02-20, rolled back 01:00, before the window: counts nowhere.
    live("D8", at(20, 0, month=2), (1,), status="rolled_back",
         rolled_back_at=at(20, 1, month=2)),
]
INCIDENTS = [
    IncidentRecord("INC-1", "api", at(5, 14), at(5, 18), cause_deployment_id="D2"),  # 4 h
    IncidentRecord("INC-2", "api", at(25, 10), at(25, 10.5)),       # 0.5 h
    IncidentRecord("INC-3", "api", at(28, 9), None),                # still open, no sample
    IncidentRecord("INC-4", "api", at(15, 0, month=2), at(15, 1, month=2)),  # before it
]


def test_hand_computed_history() -> None:
    m = report(RECORDS, INCIDENTS, start=START, end=END, buckets=BucketTable())

    # Frequency: D1, D2, D3, D5, D6 live in the window = 5 over 30/7 weeks = 35/30 a week.
    # Deploy days 03-02, 03-05, 03-10, 03-20 = 4 -> 4 / (30/7) = 0.933 a week: >= 1 a month
    # (0.23 a week) but < 1 a week -> medium.
    f = m["deployment_frequency"]
    assert (f.sample_size, f.bucket) == (5, "medium")
    assert f.value == pytest.approx(35 / 30)

    # Lead time: [4, 2, 24, 1, 1, 6] h -> sorted [1, 1, 2, 4, 6, 24] -> (2 + 4) / 2 = 3 h, elite.
    lt = m["lead_time"]
    assert (lt.value, lt.sample_size, lt.bucket) == (pytest.approx(3.0), 6, "elite")

    # Change failure rate: reached production D1 D2 D3 D5 D6 = 5 (D4 never served); needed
    # intervention D2 (caused INC-1) and D6 (rolled back) = 2 -> 0.4, low.
    cfr = m["change_failure_rate"]
    assert (cfr.value, cfr.sample_size, cfr.bucket) == (pytest.approx(0.4), 5, "low")

    # Failed deployment attempts, beside the rate: D4 = 1.
    fa = m["failed_deployment_attempts"]
    assert (fa.value, fa.sample_size, fa.bucket) == (1.0, 1, None)

    # Recovery: D2 4 h, D4 1.5 h, D6 2 h -> median 2 h: < 1 day -> high.
    rec = m["failed_deployment_recovery_time"]
    assert (rec.value, rec.sample_size, rec.bucket) == (pytest.approx(2.0), 3, "high")

    # Time to restore: INC-1 4 h, INC-2 0.5 h -> (0.5 + 4) / 2 = 2.25 h -> high.
    ttr = m["time_to_restore"]
    assert (ttr.value, ttr.sample_size, ttr.bucket) == (pytest.approx(2.25), 2, "high")

    # Rework: D3 of the 5 that reached production -> 0.2 > 0.15 -> low.
    rw = m["deployment_rework_rate"]
    assert (rw.value, rw.sample_size, rw.bucket) == (pytest.approx(0.2), 5, "low")


def test_resolution_before_the_next_deployment_is_the_recovery() -> None:
    # D2 named by INC-1, resolved at 13:00 (before any fix went live) -> 1 h.
    records = [live("D1", at(2, 12), ()), live("D2", at(5, 12), ()), live("D3", at(6, 0), ())]
    incidents = [IncidentRecord("INC-1", "api", at(5, 12.5), at(5, 13), "D2")]
    m = report(records, incidents, start=START, end=END, buckets=BucketTable())
    rec = m["failed_deployment_recovery_time"]
    assert (rec.value, rec.sample_size) == (pytest.approx(1.0), 1)


def test_a_failed_attempt_recovered_by_a_redeploy() -> None:
    # D2 failed at 10:00; the pipeline redeployed D1's version, live at 10:05 -> 5 minutes.
    records = [live("D1", at(2, 12), ()),
               DeploymentRecord("D2", "api", "failed", finished_at=at(3, 10)),
               live("D3", at(3, 10) + timedelta(minutes=5), (), rework=True)]
    m = report(records, [], start=START, end=END, buckets=BucketTable())
    assert m["failed_deployment_recovery_time"].value == pytest.approx(5 / 60)
    assert m["change_failure_rate"].value == 0.0  # D2 never served
    assert m["failed_deployment_attempts"].value == 1.0
    assert m["deployment_rework_rate"].value == pytest.approx(1 / 2)


def test_no_sample_gives_no_value_and_no_bucket() -> None:
    m = dora_metrics([], [], start=START, end=END, buckets=BucketTable())
    counts = ("deployment_frequency", "failed_deployment_attempts")
    assert m["deployment_frequency"].value == m["failed_deployment_attempts"].value == 0.0
    assert all(x.bucket is None and x.sample_size == 0 for x in m.values())
    assert all(m[k].value is None for k in m if k not in counts)


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
    finished = [f for f in history if f.outcome in ("succeeded", "rolled_back")]
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
