"""Pure rules of the dashboard, without broker or server: the board projection (its DORA from
tandem.dora), SSE fan-out (ring, resume, filters, slow clients)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from board_scenario import (
    catalog_service,
    change,
    deployment,
    finished_deployment,
    freeze,
    incident,
    iso,
)
from hypothesis import given
from hypothesis import strategies as st

from dashboard.board import Board
from dashboard.config import DashboardSettings
from dashboard.stream import EventHub, StreamEvent, StreamFilter

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
settings = DashboardSettings()


# -- DORA (the arithmetic is tandem.dora's: tests/shared/test_dora.py) ------------------

def test_the_board_has_no_dora_arithmetic_of_its_own() -> None:
    import dashboard

    package = Path(dashboard.__file__).parent
    assert not (package / "dora.py").exists()
    assert "from tandem import dora" in (package / "board.py").read_text()


@given(st.lists(st.tuples(st.floats(0.5, 55 * 24), st.sampled_from(
    ["succeeded", "failed", "rolled_back", "canceled"])), max_size=25))
def test_weekly_trend_adds_up_to_the_deployments_of_those_weeks(
        history: list[tuple[float, str]]) -> None:
    board = Board(settings)
    for n, (hours_ago, status) in enumerate(history):
        dep = finished_deployment("api", f"1.{n}", NOW - timedelta(hours=hours_ago), status)
        apply_all(board, dep.events)
    [api] = board.dora(NOW) or [{"metrics": {"deployment_frequency": {"trend": [0] * 8}}}]
    trend = api["metrics"]["deployment_frequency"]["trend"]
    assert len(trend) == settings.trend_weeks
    live = [h for h, status in history if status in ("succeeded", "rolled_back")]
    # Each week's value is deployments per week over a week: the count itself.
    assert round(sum(v or 0 for v in trend)) == len(live)


# -- the board ----------------------------------------------------------------------------

def apply_all(board: Board, events: list) -> None:  # type: ignore[type-arg]
    for n, event in enumerate(events):
        board.apply(event, f"t:0:{n}")


def test_board_keeps_the_newest_snapshot_and_ignores_stale_replays() -> None:
    board = Board(settings)
    inc = incident("DB down", "db", 2, reported=NOW)
    created, acked = inc.created(), inc.moved("acknowledged", acknowledged_at=iso(NOW))
    assert board.apply(created, "t:0:0") and board.apply(acked, "t:0:1")
    assert not board.apply(created, "t:0:2")  # a redelivered older event changes nothing
    [shown] = board.snapshot(NOW)["incidents"]["open"]
    assert shown["status"] == "acknowledged"
    assert [f["id"] for f in board.feed] == ["t:0:1", "t:0:0"]


def test_open_incidents_by_priority_with_sla_clocks_and_resolved_ones_aside() -> None:
    board = Board(settings)
    p3 = incident("Slow search", "search", 3, reported=NOW - timedelta(hours=5),
                  status="in_progress", acknowledged_at=iso(NOW - timedelta(hours=4)))
    p1 = incident("Checkout down", "checkout", 1, reported=NOW - timedelta(minutes=20))
    own = incident("Own targets", "api", 2, reported=NOW,
                   response_due_at=iso(NOW + timedelta(minutes=3)))
    done = incident("Fixed", "api", 2, reported=NOW - timedelta(hours=1))
    apply_all(board, [p3.created(), p1.created(), own.created(), done.created(),
                      done.moved("resolved", resolved_at=iso(NOW)), p3.event(
                          "sla_breached", breach={"kind": "resolution", "priority": 3})])
    shown = board.snapshot(NOW)["incidents"]
    assert [i["id"] for i in shown["open"]] == [p1.id, own.id, p3.id]
    checkout = shown["open"][0]["sla"]
    assert checkout["response_due_at"] == iso(NOW - timedelta(minutes=5))  # P1: 15 minutes
    assert checkout["breached"] == ["response"]  # not acknowledged 20 minutes in
    own_sla = shown["open"][1]["sla"]
    assert own_sla["response_due_at"] == iso(NOW + timedelta(minutes=3))
    assert own_sla["resolution_due_at"] is None  # the service's own targets, not the defaults
    assert shown["open"][2]["sla"]["breached"] == ["resolution"]  # as its event said
    assert [i["id"] for i in shown["recently_resolved"]] == [done.id]


def test_incidents_show_their_group_and_teams_and_unowned_services_are_listed() -> None:
    board = Board(settings)
    owned = catalog_service("payments", owner="payments-dev", operations="payments-ops", tier=1)
    board.apply(owned.created(), "catalog:0:0")
    lost = catalog_service("legacy-batch", owner=None)
    board.apply(lost.created(), "catalog:1:0")
    paid = incident("Card payments fail", "payments", 1, assignment_group="payments-ops")
    board.apply(paid.created(), "incidents:0:0")
    stray = incident("Nightly batch late", "legacy-batch", 3, assignment_group=None)
    board.apply(stray.created(), "incidents:0:1")
    shown = {i["id"]: i for i in board.snapshot(NOW)["incidents"]["open"]}
    assert shown[paid.id]["assignment_group"] == "payments-ops"
    assert shown[paid.id]["teams"] == {"owner_team": "payments-dev",
                                       "operations_team": "payments-ops", "in_catalog": True}
    assert shown[stray.id]["teams"]["owner_team"] is None
    services = board.snapshot(NOW)["services"]
    assert [(s["name"], s["unowned"]) for s in services] == [("legacy-batch", True),
                                                             ("payments", False)]
    # Claimed later: the board follows the catalog's newest word.
    lost.snapshot.update(owner_team="batch-dev", unowned=False)
    board.apply(lost.event("updated", changes={}), "catalog:1:1")
    assert [s["unowned"] for s in board.snapshot(NOW)["services"]] == [False, False]


def test_changes_in_flight_and_freezes_now() -> None:
    board = Board(settings)
    live = change("Upgrade DB", "db", status="scheduled", start=NOW + timedelta(hours=1))
    closed = change("Old", "db", status="review", start=NOW - timedelta(days=1))
    active = freeze(["db"], "incident", starts=NOW - timedelta(hours=1),
                    ends=NOW + timedelta(hours=1), status="active")
    later = freeze([], "quarter end", starts=NOW + timedelta(days=1),
                   ends=NOW + timedelta(days=2), status="scheduled")
    lapsed = freeze(["api"], "over", starts=NOW - timedelta(days=2),
                    ends=NOW - timedelta(days=1), status="active")
    apply_all(board, [live.created(), closed.created(), closed.moved("closed"),
                      active.created(), later.created(), lapsed.created()])
    shown = board.snapshot(NOW)
    assert [c["id"] for c in shown["changes"]] == [live.id]
    assert [(f["id"], f["active"]) for f in shown["freezes"]] == [(active.id, True),
                                                                  (later.id, False)]


def test_board_dora_counts_a_deployment_an_incident_names_as_failed() -> None:
    board = Board(settings)
    good = finished_deployment("api", "1.0", NOW - timedelta(days=2))
    blamed = finished_deployment("api", "1.1", NOW - timedelta(days=1))
    staging = finished_deployment("api", "1.2", NOW - timedelta(hours=5), status="failed",
                                  environment="staging")
    inc = incident("Errors after 1.1", "api", 2, reported=NOW - timedelta(hours=23),
                   cause_deployment_id=blamed.id)
    apply_all(board, [*good.events, *blamed.events, *staging.events, inc.created(),
                      inc.moved("resolved", resolved_at=iso(NOW - timedelta(hours=22)))])
    [api] = board.dora(NOW)
    metrics = api["metrics"]
    # Ratios, as /api/v1/dora answers them; staging is left out.
    assert metrics["change_failure_rate"] == {
        "value": 0.5, "unit": "ratio", "sample_size": 2, "bucket": "low",
        "trend": metrics["change_failure_rate"]["trend"]}
    assert metrics["failed_deployment_recovery_time"]["value"] == 2.0
    assert metrics["deployment_frequency"]["sample_size"] == 2
    assert len(metrics["lead_time"]["trend"]) == settings.trend_weeks
    assert metrics["deployment_rework_rate"]["value"] == 0.0


def test_prune_forgets_old_finished_aggregates_only() -> None:
    board = Board(settings)
    old = incident("Long ago", "api", 3, reported=NOW - timedelta(days=100))
    open_ = incident("Still open", "api", 3, reported=NOW - timedelta(days=100))
    events = [old.created(), old.moved("closed"), open_.created()]
    for event in events:
        board.apply(event.model_copy(update={"time": NOW - timedelta(days=100)}), "x")
    board.prune(NOW)
    assert set(board.aggregates["incident"]) == {open_.id}


# -- SSE fan-out --------------------------------------------------------------------------

def stream_event(n: int, type_: str = "tandem.incident.created",
                 services: frozenset[str] = frozenset({"api"})) -> StreamEvent:
    return StreamEvent(f"tandem.incidents:0:{n}", type_, services, f'{{"n": {n}}}')


def test_ring_replays_after_a_known_id_and_everything_after_a_forgotten_one() -> None:
    hub = EventHub(ring_size=5, client_queue_size=10)
    for n in range(8):
        hub.publish(stream_event(n))
    assert [e.id for e in hub.after("tandem.incidents:0:5")] == [
        "tandem.incidents:0:6", "tandem.incidents:0:7"]
    assert len(hub.after("tandem.incidents:0:1")) == 5  # evicted: replay the whole ring
    assert hub.after(None) == []


def test_filters_by_type_prefix_and_service() -> None:
    wanted = StreamFilter.parse("tandem.incident.*, tandem.deployment.gate_decided", "api")
    assert wanted.matches(stream_event(1))
    assert wanted.matches(stream_event(2, "tandem.deployment.gate_decided"))
    assert not wanted.matches(stream_event(3, "tandem.deployment.created"))
    assert not wanted.matches(stream_event(4, services=frozenset({"web"})))
    assert wanted.matches(stream_event(5, "tandem.incident.updated", frozenset({"*"})))
    assert StreamFilter.parse(None, None).matches(stream_event(6, "tandem.change.created"))


async def test_a_slow_client_is_dropped_and_never_holds_up_the_others() -> None:
    hub = EventHub(ring_size=100, client_queue_size=3)
    slow = hub.subscribe(StreamFilter(), None)
    fast = hub.subscribe(StreamFilter(), None)
    received: list[str] = []

    async def read_fast() -> None:
        async for frame in hub.frames(fast, keepalive_s=5):
            received.append(frame)

    reader = asyncio.create_task(read_fast())
    await asyncio.sleep(0)
    for n in range(10):
        hub.publish(stream_event(n))  # never waits on any client
        await asyncio.sleep(0)
    assert slow.dropped and not fast.dropped
    slow_frames = [f async for f in hub.frames(slow, keepalive_s=5)]
    assert all("data:" not in f for f in slow_frames)  # its stream simply ends
    assert slow not in hub.subscribers
    hub.end_all()
    await asyncio.wait_for(reader, 5)
    assert sum("data:" in f for f in received) == 10
    # The dropped client resumes from the last id it saw and misses nothing the ring holds.
    resumed = hub.subscribe(StreamFilter(), "tandem.incidents:0:2")
    assert [e.id for e in resumed.backlog] == [f"tandem.incidents:0:{n}" for n in range(3, 10)]


def test_frames_carry_the_position_id_and_the_event_json() -> None:
    assert stream_event(7).frame() == 'id: tandem.incidents:0:7\ndata: {"n": 7}\n\n'
    assert deployment("api", "1").created().type == "tandem.deployment.created"


def test_the_page_loads_nothing_from_the_network_and_never_writes_html() -> None:
    from dashboard.routes import STATIC_DIR

    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        urls = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text)
                if u != "http://www.w3.org/2000/svg"]
        assert urls == [], f"{path.name} refers to {urls}"
        if path.suffix == ".js":
            assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", text)
