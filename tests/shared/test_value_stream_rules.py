"""The value stream arithmetic, by hand: stage times, wait against work, p50/p90, the flow
efficiency and the costliest stage, from records whose every moment is written out here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tandem.value_stream import (
    DeliveryRecord,
    FailureRecord,
    StateSpan,
    stage_times,
    value_stream,
)

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def at(minutes: float) -> datetime:
    return T0 + minutes * M


def test_a_delivery_splits_each_stage_into_wait_and_work() -> None:
    # Committed 09:00; change requested 10:00 (new until 10:20, then waiting in assess and
    # authorize until 11:00); scheduled 11:00; deploy started 11:30, deployed 11:40.
    record = DeliveryRecord(
        id="d1", service="payments", committed_at=at(0), change_requested_at=at(60),
        change_authorized_at=at(120), deploy_started_at=at(150), deployed_at=at(160),
        change_history=(StateSpan("new", at(60)), StateSpan("assess", at(80)),
                        StateSpan("authorize", at(100)), StateSpan("scheduled", at(120)),
                        StateSpan("implement", at(150))))
    got = {s.stage: (s.wait_s / 60, s.work_s / 60) for s in stage_times(record)}
    assert got == {"commit": (60, 0), "approval": (40, 20), "scheduled": (30, 0),
                   "deploy": (0, 10)}


def test_a_failure_waits_while_on_hold_and_while_its_review_is_untouched() -> None:
    record = FailureRecord(
        id="i1", service="payments", opened_at=at(0), acknowledged_at=at(5),
        mitigated_at=at(45), resolved_at=at(65), review_done_at=at(65 + 120),
        incident_history=(StateSpan("new", at(0)), StateSpan("acknowledged", at(5)),
                          StateSpan("in_progress", at(10)), StateSpan("on_hold", at(20)),
                          StateSpan("in_progress", at(30)), StateSpan("resolved", at(65))),
        review_history=(StateSpan("open", at(65)), StateSpan("in_progress", at(95)),
                        StateSpan("completed", at(185))))
    got = {s.stage: (s.wait_s / 60, s.work_s / 60) for s in stage_times(record)}
    assert got == {"response": (5, 0), "mitigation": (10, 30), "resolution": (0, 20),
                   "review": (30, 90)}


def test_the_whole_stream_names_its_costliest_stage_and_flow_efficiency() -> None:
    deliveries = [
        DeliveryRecord(id=f"d{i}", service="payments", committed_at=at(0),
                       change_requested_at=at(commit), change_authorized_at=at(commit + 10),
                       deploy_started_at=at(commit + 10), deployed_at=at(commit + 15),
                       change_history=(StateSpan("assess", at(commit)),
                                       StateSpan("scheduled", at(commit + 10))))
        for i, commit in enumerate([10, 20, 30, 40, 100])
    ]
    outside = DeliveryRecord(id="old", service="payments", committed_at=at(-5000),
                             change_requested_at=at(-4000), deployed_at=at(-3000))
    stream = value_stream([*deliveries, outside], [], start=at(-60), end=at(24 * 60),
                          teams={"payments": ("payments-dev", "payments-ops")})
    by = {s.name: s for s in stream.stages}
    assert stream.deliveries == 5
    # commit stage: 10, 20, 30, 40, 100 minutes; p50 = 30 m, p90 = 40 + 0.6 * 60 = 76 m.
    assert by["commit"].p50_s == 30 * 60
    assert by["commit"].p90_s == 76 * 60
    assert by["commit"].wait_s == 200 * 60 and by["commit"].work_s == 0
    # approval: 10 m each, all waiting in assess; deploy: 5 m each, all work; scheduled: 0.
    assert (by["approval"].wait_s, by["approval"].work_s) == (50 * 60, 0)
    assert (by["deploy"].wait_s, by["deploy"].work_s) == (0, 25 * 60)
    assert by["deploy"].teams == ("payments-dev",)
    assert by["response"].teams == () and by["response"].count == 0
    # work 25 m of 275 m in all.
    assert stream.flow_efficiency == round(25 / 275, 4)
    assert stream.costliest_stage == "commit"


def test_a_failure_resolved_straight_from_new_waited_until_it_was_resolved() -> None:
    record = FailureRecord(id="i2", service="s", opened_at=at(0), resolved_at=at(30),
                           incident_history=(StateSpan("new", at(0)),
                                             StateSpan("resolved", at(30))))
    got = {s.stage: (s.wait_s / 60, s.work_s / 60) for s in stage_times(record)}
    assert got == {"response": (30, 0), "mitigation": (0, 0), "resolution": (0, 0)}
