"""History on day one: ``tandem import deployments`` and ``tandem import incidents`` against
the services as real processes (incidents, changes, deployments, notifier; the real broker;
SQLite, then PostgreSQL), with a generated 90 days of one service's history: a few thousand
deployments (JSON lines) and incidents (a PagerDuty incidents CSV export, its columns as they
are).

- DORA over 90 days equals the same figures computed here by hand from the file;
- MTTA and MTTR count the imported incidents at their own times;
- a bad line is rejected with its line number and the rest imported; importing again skips all;
- imported failures react nowhere: no incident opened, no freeze, nothing sent to a subscriber
  (a real receiver on loopback), while a live incident after them is sent.
"""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e.stack import TANDEM, Stack
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import create_pg_database, drop_pg_database

SERVICES = ["incidents", "changes", "deployments", "notifier"]
DEPLOYMENTS = 2400
INCIDENTS = 600
HOUR = 3600.0


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def history_stack(request: pytest.FixtureRequest, broker: EmbeddedBroker,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import asyncio

    env = {"TANDEM_NOTIFIER_ALLOW_LOOPBACK": "true", "TANDEM_GATE_MODE": "receipt"}
    databases: list[str] = []
    if request.param == "postgresql":
        for name in SERVICES:
            database = asyncio.run(create_pg_database())
            databases.append(database)
            env[f"TANDEM_{name.upper()}_DATABASE_URL"] = (
                f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp(f"history-{request.param}"),
                  services=SERVICES, env=env)
    try:
        yield stack.start()
    finally:
        stack.stop()
        for database in databases:
            asyncio.run(drop_pg_database(database))


class Receiver:
    """A webhook receiver on loopback: every body posted to it, in order."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def until(probe: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.25)


def at(moment: datetime) -> str:
    return moment.isoformat()


def generate(directory: Path, service: str, now: datetime
             ) -> tuple[Path, Path, list[dict[str, Any]], list[dict[str, Any]]]:
    """The files, and the records in them (the good lines only), 90 days of one service."""
    rng = random.Random(18)
    start = now - timedelta(days=89)
    deployments: list[dict[str, Any]] = []
    lines: list[str] = []
    for i in range(DEPLOYMENTS):
        finished = start + timedelta(seconds=i * 88 * 86400 / DEPLOYMENTS
                                     + rng.randint(0, 600))
        roll = rng.random()
        status = ("succeeded" if roll < 0.85 else "rolled_back" if roll < 0.92
                  else "failed" if roll < 0.98 else "canceled")
        record: dict[str, Any] = {
            "external_id": f"ci-{i}", "service": service, "environment": "production",
            "version": f"1.{i}.0", "status": status,
            "started_at": at(finished - timedelta(minutes=rng.randint(2, 30))),
            "finished_at": at(finished),
            "commits": [{"sha": uuid.uuid4().hex[:40],
                         "committed_at": at(finished - timedelta(
                             minutes=rng.randint(30, 72 * 60)))}
                        for _ in range(rng.randint(1, 3))],
        }
        if status == "rolled_back":
            record["rolled_back_at"] = at(finished + timedelta(minutes=rng.randint(5, 180)))
        deployments.append(record)
        lines.append(json.dumps(record))
    # Two bad lines among the good: lines 101 and 1202 of the file.
    lines.insert(100, json.dumps({**deployments[0], "external_id": "bad-1",
                                  "status": "exploded"}))
    lines.insert(1201, "{not json")
    deployments_file = directory / "deployments.jsonl"
    deployments_file.write_text("\n".join(lines) + "\n")

    incidents: list[dict[str, Any]] = []
    incidents_file = directory / "incidents.csv"
    with incidents_file.open("w", newline="") as handle:
        # A PagerDuty incidents export's columns, as it writes them.
        writer = csv.writer(handle)
        writer.writerow(["id", "incident_number", "description", "service_name",
                         "escalation_policy_name", "urgency", "priority", "status",
                         "created_on", "resolved_on", "seconds_to_first_ack",
                         "seconds_to_resolve"])
        for i in range(INCIDENTS):
            reported = start + timedelta(seconds=i * 88 * 86400 / INCIDENTS
                                         + rng.randint(0, 3600))
            ack = rng.randint(30, 3600)
            resolve = rng.randint(ack + 60, 48 * 3600)
            priority = rng.choice(["P1", "P2", "P3", "", ""])
            urgency = rng.choice(["high", "low"])
            incidents.append({"reported": reported, "ack": ack, "resolve": resolve})
            writer.writerow([f"Q{i:06d}", 1000 + i, f"Errors on {service} #{i}", service,
                             "Default", urgency, priority, "resolved",
                             reported.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                             (reported + timedelta(seconds=resolve)).strftime(
                                 "%Y-%m-%dT%H:%M:%S+00:00"), ack, resolve])
            if i == 299:
                # Line 302 of the file (after the header): resolved before it was reported.
                writer.writerow(["QBAD", 99999, "Broken", service, "Default", "high", "P1",
                                 "resolved", "2026-01-02T00:00:00+00:00",
                                 "2026-01-01T00:00:00+00:00", "", ""])
    for incident in incidents:
        # The CSV keeps whole seconds.
        incident["reported"] = incident["reported"].replace(microsecond=0)
    return deployments_file, incidents_file, deployments, incidents


def median(values: list[float]) -> float:
    return statistics.median(values)  # interpolated for an even count, as DORA's


def dora_by_hand(deployments: list[dict[str, Any]], incidents: list[dict[str, Any]]
                 ) -> dict[str, Any]:
    """The DORA figures of the file over its 90 days, from the definitions (docs/dora.md)."""
    def t(value: str) -> datetime:
        return datetime.fromisoformat(value)

    live = [d for d in deployments if d["status"] in ("succeeded", "rolled_back")]
    live_times = sorted(t(d["finished_at"]) for d in live)
    lead = [(t(d["finished_at"]) - t(c["committed_at"])).total_seconds() / HOUR
            for d in live for c in d["commits"]]
    recoveries = []
    for d in deployments:
        if d["status"] == "rolled_back":
            recoveries.append((t(d["rolled_back_at"]) - t(d["finished_at"])).total_seconds()
                              / HOUR)
        elif d["status"] == "failed":
            failed_at = t(d["finished_at"])
            fix = next((moment for moment in live_times if moment > failed_at), None)
            if fix is not None:
                recoveries.append((fix - failed_at).total_seconds() / HOUR)
    return {
        "deployment_frequency": len(live) / (90 / 7),
        "lead_time": median(lead),
        "change_failure_rate": sum(d["status"] == "rolled_back" for d in live) / len(live),
        "failed_deployment_attempts": float(sum(d["status"] == "failed" for d in deployments)),
        "failed_deployment_recovery_time": median(recoveries),
        "time_to_restore": median([i["resolve"] / HOUR for i in incidents]),
    }


def tandem(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TANDEM, *args], env=stack.cli_env("manager", "historian"),
                          capture_output=True, text=True, timeout=120, check=False)


def api(stack: Stack, service: str, method: str, path: str, role: str = "viewer",
        **kwargs: Any) -> Any:
    r = httpx.request(method, f"{stack.url(service)}{path}", headers=stack.headers(role),
                      timeout=30, **kwargs)
    assert r.status_code < 300, r.text
    return r.json()


def test_ninety_days_of_history_give_dora_and_mttr_and_react_nowhere(
        history_stack: Stack, tmp_path: Path) -> None:
    stack = history_stack
    service = f"shop-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    deployments_file, incidents_file, deployments, incidents = generate(tmp_path, service, now)
    with Receiver() as receiver:
        api(stack, "notifier", "POST", "/api/v1/subscriptions", role="manager", json={
            "url": receiver.url, "services": [service],
            "types": ["tandem.deployment.*", "tandem.incident.*"]})

        imported = tandem(stack, "import", "deployments", str(deployments_file))
        incidents_imported = tandem(stack, "import", "incidents", str(incidents_file))
        assert imported.returncode == 1, imported  # some lines were rejected
        assert imported.stdout.strip() == (
            f"{deployments_file}: imported {DEPLOYMENTS}, skipped 0 (already there), "
            "rejected 2")
        assert "line 101: status:" in imported.stderr
        assert "line 1202: not JSON" in imported.stderr
        assert incidents_imported.stdout.strip() == (
            f"{incidents_file}: imported {INCIDENTS}, skipped 0 (already there), rejected 1")
        assert "line 302: " in incidents_imported.stderr

        # DORA, once the deployments service has heard every imported incident.
        def report() -> Any:
            metrics = api(stack, "deployments", "GET", "/api/v1/dora", params={
                "service": service, "window": "90d"})["metrics"]
            return metrics if metrics["time_to_restore"]["sample_size"] == INCIDENTS else None

        metrics = until(report)
        expected = dora_by_hand(deployments, incidents)
        for name, value in expected.items():
            assert metrics[name]["value"] == pytest.approx(value, rel=1e-9), name

        mtt = api(stack, "incidents", "GET", "/api/v1/incident-metrics",
                  params={"service": service})
        assert mtt["mttr"]["count"] == mtt["mtta"]["count"] == INCIDENTS
        assert mtt["mttr"]["mean"] == pytest.approx(
            statistics.fmean(i["resolve"] for i in incidents), abs=0.001)
        assert mtt["mtta"]["median"] == pytest.approx(
            statistics.median(i["ack"] for i in incidents), abs=0.001)

        # The same files again: everything is skipped, the bad lines named again.
        again = tandem(stack, "import", "deployments", "--json", str(deployments_file))
        summary = json.loads(again.stdout)
        assert (summary["imported"], summary["skipped"]) == (0, DEPLOYMENTS)
        assert [r["line"] for r in summary["rejected"]] == [101, 1202]

        # Nothing reacted: no incident of a failed import, no freeze, nothing sent...
        page = api(stack, "incidents", "GET", "/api/v1/incidents",
                   params={"service": service, "source": "deployment"})
        assert page["items"] == []
        freezes = api(stack, "changes", "GET", "/api/v1/freezes",
                      params={"status": "active"})["items"]
        assert [f for f in freezes if service in f["services"]] == []
        # ...while a live incident after them is sent at once.
        live = api(stack, "incidents", "POST", "/api/v1/incidents", role="practitioner",
                   json={"title": "Live one", "service": service, "impact": 3,
                         "urgency": 3, "environment": "production"})
        until(lambda: any(b.get("subject") == live["id"] for b in receiver.bodies))
        time.sleep(1)
        assert {b["subject"] for b in receiver.bodies} == {live["id"]}
        assert not any(b["data"].get("imported") for b in receiver.bodies)


def test_a_tty_shows_a_progress_bar_and_a_ci_log_does_not(history_stack: Stack,
                                                          tmp_path: Path) -> None:
    service = f"tty-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "few.jsonl"
    finished = datetime.now(UTC) - timedelta(days=1)
    path.write_text("".join(json.dumps({
        "external_id": f"{service}-{i}", "service": service, "version": f"0.{i}",
        "status": "succeeded", "finished_at": at(finished + timedelta(minutes=i))}) + "\n"
        for i in range(30)))
    env = history_stack.cli_env("manager")
    plain = subprocess.run([TANDEM, "import", "deployments", "--batch", "10", str(path)],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert plain.returncode == 0, plain
    assert plain.stderr == ""
    assert "imported 30" in plain.stdout

    import pty

    leader, follower = pty.openpty()
    try:
        shown = subprocess.run([TANDEM, "import", "deployments", str(path)], env=env,
                               stdout=subprocess.PIPE, stderr=follower, timeout=60,
                               check=False)
        os.close(follower)
        screen = b""
        os.set_blocking(leader, False)
        try:
            while chunk := os.read(leader, 65536):
                screen += chunk
        except (BlockingIOError, OSError):
            pass
    finally:
        os.close(leader)
    assert shown.returncode == 0
    assert b"importing deployments" in screen
    assert b"skipped 30" in shown.stdout


def test_only_a_manager_imports_history(history_stack: Stack) -> None:
    record = {"line": 1, "record": {"external_id": "x", "service": "nobody"}}
    for service, path in (("deployments", "/api/v1/imports/deployments"),
                          ("incidents", "/api/v1/imports/incidents")):
        for role in ("viewer", "pipeline", "practitioner"):
            r = httpx.post(f"{history_stack.url(service)}{path}", json={"records": [record]},
                           headers=history_stack.headers(role), timeout=30)
            assert r.status_code == 403, (service, role, r.text)
        r = httpx.post(f"{history_stack.url(service)}{path}", json={"records": []},
                       headers=history_stack.headers("owner"), timeout=30)
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "records"
