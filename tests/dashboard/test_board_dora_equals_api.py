"""One DORA: over random deployment histories, the board's figures equal ``/api/v1/dora``'s.

Each history (Hypothesis) is driven through the deployments service's own write paths on a
real database (records, transitions, consumed incident events, with fixed times); the events
it published (its outbox, byte for byte) and the incident events it consumed are then folded
into a fresh board. Both sides must show the same value, sample and bucket for every metric.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dashboard.board import Board
from dashboard.config import DashboardSettings
from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from deployments.consumers import incident_moved
from deployments.deployment import deployments
from deployments.dora_facts import dora_report
from deployments.lifecycle import record_deployment, transition
from deployments.models import DeploymentCreate, Environment
from tandem.db import Database
from tandem.events import CloudEvent, new_event
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem.tables import OutboxMessage

UNTIL = datetime(2026, 6, 30, tzinfo=UTC)
WINDOW_DAYS = 28
#: How each deployment ends (None: it stays requested).
PATHS = {
    "succeeded": ["in_progress", "succeeded"],
    "failed": ["in_progress", "failed"],
    "rolled_back": ["in_progress", "succeeded", "rolled_back"],
    "canceled": ["canceled"],
    "requested": [],
}

deploy_step = st.fixed_dictionaries({
    "kind": st.just("deploy"),
    "gap_h": st.floats(0.05, 60),
    "version": st.sampled_from(["1.0", "1.1", "1.2"]),  # few: rollbacks happen (rework)
    "commit_ages_h": st.lists(st.floats(-2, 200), max_size=3),
    "path": st.sampled_from(sorted(PATHS)),
    "step_h": st.floats(0.01, 5),
})
incident_step = st.fixed_dictionaries({
    "kind": st.just("incident"),
    "gap_h": st.floats(0.05, 60),
    "cause": st.one_of(st.none(), st.integers(0, 30)),  # which earlier deployment, if any
    "resolve_after_h": st.one_of(st.none(), st.floats(0.01, 48)),
    "priority": st.integers(3, 5),  # P1/P2 would hold the gate (no freezes here)
    "confirmed": st.booleans(),  # named by cause_confirmed rather than the snapshot
})
histories = st.lists(st.one_of(deploy_step, deploy_step, incident_step),
                     min_size=1, max_size=18).filter(lambda h: h[0]["kind"] == "deploy")


#: Seeded histories (the same every run); each kind of fact occurs in at least one.
HISTORIES = 24


def generated(n: int) -> list[list[dict[str, Any]]]:
    """``n`` histories as Hypothesis generates them (seeded: the same every run)."""
    out: list[list[dict[str, Any]]] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(histories)
    def collect(value: list[dict[str, Any]]) -> None:
        out.append(value)

    collect()
    return out


class Driver:
    """Plays one history of one service through the deployments service's write paths."""

    def __init__(self, db: Database, service: str) -> None:
        self.db, self.service = db, service
        self.settings = DeploymentsSettings()
        self.deployments: list[str] = []
        self.incident_events: list[CloudEvent] = []
        self.sequences: dict[str, int] = {}

    async def deploy(self, at: datetime, step: dict[str, Any]) -> datetime:
        async with self.db.transaction() as s:
            snap = await record_deployment(s, self.settings, DeploymentCreate(
                service=self.service, environment=Environment.production,
                version=step["version"],
                commits=[{"sha": uuid.uuid4().hex[:12],
                          "committed_at": at - timedelta(hours=h)}
                         for h in step["commit_ages_h"]]),  # type: ignore[misc]
                actor="ci", now=at)
        self.deployments.append(str(snap.id))
        for to in PATHS[step["path"]]:
            at += timedelta(hours=step["step_h"])
            async with self.db.transaction() as s:
                dep = await deployments.get(s, snap.id, for_update=True)
                await transition(s, dep, to, "", actor="ci", now=at)
        return at

    async def incident(self, at: datetime, step: dict[str, Any]) -> None:
        incident_id = str(uuid.uuid4())
        cause = (self.deployments[step["cause"] % len(self.deployments)]
                 if step["cause"] is not None else None)
        snapshot = {"id": incident_id, "number": f"INC{len(self.sequences) + 1:07d}",
                    "service": self.service, "environment": "production",
                    "priority": step["priority"], "major": False, "status": "new",
                    "cause_deployment_id": None if step["confirmed"] else cause,
                    "reported_at": at.isoformat(), "resolved_at": None}
        await self.send(incident_id, "created", snapshot)
        if cause is not None and step["confirmed"]:
            await self.send(incident_id, "cause_confirmed", snapshot, deployment_id=cause)
        if step["resolve_after_h"] is not None:
            resolved = at + timedelta(hours=step["resolve_after_h"])
            await self.send(incident_id, "transitioned", {
                **snapshot, "status": "resolved", "resolved_at": resolved.isoformat()})

    async def send(self, incident_id: str, verb: str, snapshot: dict[str, Any],
                   **facts: Any) -> None:
        seq = self.sequences[incident_id] = self.sequences.get(incident_id, 0) + 1
        event = new_event(service="incidents", type=f"tandem.incident.{verb}",
                          subject=incident_id, sequence=seq, actor="ops",
                          data={"incident": snapshot, **facts})
        self.incident_events.append(event)
        async with self.db.transaction() as s:
            await incident_moved(s, event, self.settings)

    async def published(self) -> list[CloudEvent]:
        """The deployment events the service published for this service, in order."""
        async with self.db.transaction() as s:
            rows = (await s.scalars(select(OutboxMessage).order_by(
                OutboxMessage.seq))).all()  # type: ignore[arg-type]
        events = [CloudEvent.from_bytes(r.payload) for r in rows]
        return [e for e in events if e.aggregate == "deployment"
                and e.data["deployment"]["service"] == self.service]


async def play(db: Database, service: str, history: list[dict[str, Any]]) -> Driver:
    driver = Driver(db, service)
    at = UNTIL - timedelta(days=WINDOW_DAYS + 3)
    for step in history:
        at += timedelta(hours=step["gap_h"])
        if at >= UNTIL - timedelta(hours=1):
            break
        if step["kind"] == "deploy":
            at = await driver.deploy(at, step)
        else:
            await driver.incident(at, step)
    return driver


async def test_the_board_shows_the_apis_dora_for_any_history(new_database: Any,
                                                             tmp_path: Path) -> None:
    url = await new_database("deployments")
    upgrade(MIGRATIONS_DIR, url)
    db = Database(url, topic=PlatformSettings(var_dir=tmp_path).topic("deployments"))
    compared, seen = 0, {"recovered": 0, "rework": 0, "failed": 0, "attempts": 0}
    try:
        for n, history in enumerate(generated(HISTORIES)):
            service = f"svc-{n}"
            driver = await play(db, service, history)
            board = Board(DashboardSettings(dora_window_days=WINDOW_DAYS, trend_weeks=2))
            for i, event in enumerate([*await driver.published(), *driver.incident_events]):
                board.apply(event, f"t:0:{i}")
            async with db.transaction() as s:
                api = (await dora_report(
                    s, service=service, environment=Environment.production, window="28d",
                    span=timedelta(days=WINDOW_DAYS), until=UNTIL,
                    buckets=driver.settings.dora_buckets)).metrics.model_dump()
            [card] = [c for c in board.dora(UNTIL) if c["service"] == service]
            shown = {name: {k: v for k, v in m.items() if k != "trend"}
                     for name, m in card["metrics"].items()}
            assert set(shown) == set(api), history
            for name, metric in api.items():
                board_metric = shown[name]
                assert (board_metric["sample_size"], board_metric["bucket"],
                        board_metric["unit"]) == (metric["sample_size"], metric["bucket"],
                                                  metric["unit"]), (name, history)
                assert board_metric["value"] == pytest.approx(metric["value"]), (name, history)
            compared += 1
            seen["recovered"] += api["failed_deployment_recovery_time"]["sample_size"] > 0
            seen["rework"] += (api["deployment_rework_rate"]["value"] or 0) > 0
            seen["failed"] += (api["change_failure_rate"]["value"] or 0) > 0
            seen["attempts"] += api["failed_deployment_attempts"]["value"] > 0
    finally:
        await db.dispose()
    assert compared == HISTORIES
    # The histories are not trivial: failures, recoveries, rework and failed attempts occur.
    # (Rework, a rollback or fix forward after a production failure, is the rarest: 1 of 24.)
    assert all(count >= 1 for count in seen.values()), seen
