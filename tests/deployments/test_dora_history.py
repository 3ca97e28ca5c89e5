"""S6 end to end inside the service: a fixed history of deployments, commits and incidents is
folded into DORA fact rows as it happens (transitions and consumed incident events), and the
report over those rows matches numbers computed by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployments.config import MIGRATIONS_DIR, DeploymentsSettings
from deployments.consumers import incident_moved
from deployments.deployment import deployments
from deployments.dora_facts import dora_report
from deployments.lifecycle import record_deployment, transition
from deployments.models import Deployment, DeploymentCreate, Environment
from tandem.db import Database
from tandem.events import new_event
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings


def at(day: int, hour: float = 0, month: int = 3) -> datetime:
    return datetime(2026, month, day, tzinfo=UTC) + timedelta(hours=hour)


class History:
    """Drives the service's own write paths with fixed times."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.settings = DeploymentsSettings()
        self.incident_seq: dict[str, int] = {}

    async def deploy(self, created: datetime, commits: list[datetime],
                     moves: list[tuple[str, datetime]], fixes: str | None = None) -> str:
        async with self.db.transaction() as s:
            snap = await record_deployment(s, self.settings,
                DeploymentCreate(service="api", environment=Environment.production,
                                 version=created.isoformat(), fixes=fixes,
                                 commits=[{"sha": uuid.uuid4().hex[:12], "committed_at": c}
                                          for c in commits]),  # type: ignore[misc]
                actor="ci", now=created)
        for to, when in moves:
            async with self.db.transaction() as s:
                dep = await deployments.get(s, snap.id, for_update=True)
                await transition(s, dep, to, "", actor="ci", now=when)
        return str(snap.id)

    async def incident(self, incident_id: str, reported: datetime, *, status: str = "new",
                       resolved: datetime | None = None, cause: str | None = None,
                       verb: str = "created", priority: int = 3, **facts: Any) -> None:
        seq = self.incident_seq[incident_id] = self.incident_seq.get(incident_id, 0) + 1
        snapshot = {"id": incident_id, "number": f"INC000000{len(self.incident_seq)}",
                    "service": "api", "environment": "production", "priority": priority,
                    "major": False, "status": status, "cause_deployment_id": cause,
                    "reported_at": reported.isoformat(),
                    "resolved_at": resolved.isoformat() if resolved else None}
        event = new_event(service="incidents", type=f"tandem.incident.{verb}",
                          subject=incident_id, sequence=seq, actor="ops",
                          data={"incident": snapshot, **facts})
        async with self.db.transaction() as s:
            await incident_moved(s, event, self.settings)


async def test_fixed_history_gives_the_hand_computed_metrics(new_database: Any,
                                                             tmp_path: Path) -> None:
    url = await new_database("deployments")
    upgrade(MIGRATIONS_DIR, url)
    db = Database(url, topic=PlatformSettings(var_dir=tmp_path).topic("deployments"))
    h = History(db)
    inc1, inc2, inc3, inc4 = (str(uuid.uuid4()) for _ in range(4))
    try:
        # Before the window: live 02-20 00:00, rolled back 01:00; INC-4 02-15, 1 h.
        await h.deploy(at(19, 23, month=2), [at(19, 20, month=2)],
                       [("in_progress", at(19, 23.5, month=2)), ("succeeded", at(20, 0, 2)),
                        ("rolled_back", at(20, 1, month=2))])
        await h.incident(inc4, at(15, 0, 2), status="resolved", resolved=at(15, 1, 2))
        # D1: commits 08:00 and 10:00, live 03-02 12:00 -> lead times 4 h and 2 h.
        await h.deploy(at(2, 11), [at(2, 8), at(2, 10)],
                       [("in_progress", at(2, 11.5)), ("succeeded", at(2, 12))])
        # D2: commit 03-04 12:00, live 03-05 12:00 -> 24 h.
        d2 = await h.deploy(at(5, 11), [at(4, 12)],
                            [("in_progress", at(5, 11.5)), ("succeeded", at(5, 12))])
        # INC-1 (INC0000002, P3, so the gate lets the fix through) reported 14:00.
        await h.incident(inc1, at(5, 14))
        # D3: the fix forward naming INC-1 (rework); commit 15:00, live 16:00 -> 1 h.
        d3 = await h.deploy(at(5, 15.5), [at(5, 15)],
                            [("in_progress", at(5, 15.75)), ("succeeded", at(5, 16))],
                            fixes="INC0000002")
        # 17:00 a manager confirms D2 caused INC-1: D2 failed at 12:00, fixed by D3 at 16:00.
        await h.incident(inc1, at(5, 14), cause=d2, verb="cause_confirmed", deployment_id=d2)
        # INC-1 resolved 18:00 (4 h to restore); D2's recovery stays at 16:00 (the earlier).
        await h.incident(inc1, at(5, 14), status="resolved", resolved=at(5, 18), cause=d2,
                         verb="transitioned")
        # D4: commit 09:00, failed 03-10 10:00 (never live).
        d4 = await h.deploy(at(10, 9.5), [at(10, 9)],
                            [("in_progress", at(10, 9.75)), ("failed", at(10, 10))])
        # D5: commit 10:30, live 11:30 (1 h); it recovers D4 after 1.5 h.
        await h.deploy(at(10, 10.75), [at(10, 10.5)],
                       [("in_progress", at(10, 11)), ("succeeded", at(10, 11.5))])
        # D6: commit 03-20 00:00, live 06:00 (6 h), rolled back 08:00: failed, 2 h to recover.
        await h.deploy(at(20, 5), [at(20, 0)], [("in_progress", at(20, 5.5)),
                                                ("succeeded", at(20, 6)),
                                                ("rolled_back", at(20, 8))])
        # D7: canceled before it ran.
        await h.deploy(at(21, 8), [at(21, 7)], [("canceled", at(21, 9))])
        # INC-2 reported 03-25 10:00, resolved 10:30 (0.5 h); INC-3 03-28 still open.
        await h.incident(inc2, at(25, 10))
        await h.incident(inc2, at(25, 10), status="resolved", resolved=at(25, 10.5),
                         verb="transitioned")
        await h.incident(inc3, at(28, 9), priority=5)
        # D9: a routine deploy while the unrelated P5 INC-3 is open: not rework; commit 11:00,
        # live 12:00 (1 h).
        d9 = await h.deploy(at(28, 11.5), [at(28, 11)],
                            [("in_progress", at(28, 11.75)), ("succeeded", at(28, 12))])

        async with db.transaction() as s:
            rows = {d: await s.get(Deployment, uuid.UUID(d)) for d in (d2, d3, d4, d9)}
            assert rows[d3] is not None and rows[d3].rework
            assert (rows[d3].recovery, rows[d3].fixes) == ("fix_forward", "INC0000002")
            assert not any(rows[d].rework for d in (d2, d4, d9))  # type: ignore[union-attr]

            report = await dora_report(
                s, service="api", environment=Environment.production, window="30d",
                span=timedelta(days=30), until=at(31), buckets=h.settings.dora_buckets)
        m = report.metrics

        # Live in 03-01..03-31: D1 D2 D3 D5 D6 D9 = 6 over 30/7 weeks = 1.4 a week; deploy days
        # 03-02 03-05 03-10 03-20 03-28 = 5 -> 1.17 a week: >= 1 a week -> high.
        assert m.deployment_frequency.value == pytest.approx(6 * 7 / 30)
        assert (m.deployment_frequency.sample_size, m.deployment_frequency.bucket) == (
            6, "high")
        # Lead times 4 2 | 24 | 1 | 1 | 6 | 1 h -> [1 1 1 2 4 6 24] -> 2 h -> elite.
        assert (m.lead_time.value, m.lead_time.sample_size, m.lead_time.bucket) == (
            pytest.approx(2.0), 7, "elite")
        # Reached production D1 D2 D3 D5 D6 D9 = 6 (D4 never served); needed intervention D2
        # (INC-1 names it) and D6 (rolled back) = 2 -> 1/3, low.
        assert (m.change_failure_rate.value, m.change_failure_rate.sample_size,
                m.change_failure_rate.bucket) == (pytest.approx(1 / 3), 6, "low")
        # Beside it: one failed attempt, D4.
        assert m.failed_deployment_attempts.value == 1.0
        # Recovery D2 12:00->16:00 = 4 h, D4 10:00->11:30 = 1.5 h, D6 06:00->08:00 = 2 h:
        # median 2 h -> high.
        rec = m.failed_deployment_recovery_time
        assert (rec.value, rec.sample_size, rec.bucket) == (pytest.approx(2.0), 3, "high")
        # Restore INC-1 4 h, INC-2 0.5 h (INC-3 open, INC-4 before): (0.5 + 4) / 2 = 2.25 h.
        ttr = m.time_to_restore
        assert (ttr.value, ttr.sample_size, ttr.bucket) == (pytest.approx(2.25), 2, "high")
        # Rework: D3 (the fix forward) of the 6 that reached production = 0.167 -> low; D9,
        # made while the unrelated INC-3 was open, is not rework.
        rw = m.deployment_rework_rate
        assert (rw.value, rw.sample_size, rw.bucket) == (pytest.approx(1 / 6), 6, "low")
    finally:
        await db.dispose()
