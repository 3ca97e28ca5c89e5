"""``python -m bench storm`` (the default of ``make bench``): Tandem's write paths under a storm,
each against a bare FastAPI endpoint taking the same body and a raw-driver endpoint writing the
same rows, in the same run.

Load comes from wrk (Debian's ``wrk``; ``make bench`` installs it) with ``bench/storm.lua``:
every request its own ``Idempotency-Key``, and for ``/v2/enqueue`` a new dedup key each or one
of 20 open ones. Each target runs ``--rounds`` times for ``--seconds`` (alternating targets),
and the figures quoted are medians over the rounds. The server's CPU time per request (from
``/proc``, the server's process tree, counted until the work the requests left behind, relay
and monitor applier included, is done) is the steady figure on a shared machine; req/s and
latency move with the machine's load, which is printed beside them.

After every ``/v2/enqueue`` run the incidents database is counted: every accepted event (202
answers, from the service's own request counter) applied once, every distinct dedup key
exactly one incident. Options: ``--seconds S`` (5), ``--rounds R`` (3), ``--connections C``
(16), ``--workers`` (also run the create with two uvicorn workers), ``--profile`` (an
in-process profile of the create path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as pyplatform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from tandem.auth import Role, mint_token
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).with_name("storm.lua")
ROUTING_KEY = "stormroutingkey0000000000000000a"


def deployment_body() -> dict[str, Any]:
    """A realistic pipeline body: three commits, artifact, ref, pipeline run."""
    now = datetime.now(UTC)
    return {
        "service": "storm", "environment": "production", "version": "1.4.2",
        "artifact": f"pkg:oci/storm@sha256:{uuid.uuid4().hex}", "ref": "refs/heads/main",
        "commits": [{"sha": uuid.uuid4().hex[:12],
                     "committed_at": (now - timedelta(hours=k + 1)).isoformat()}
                    for k in range(3)],
        "pipeline": {"id": "storm-1", "run_url": "https://ci.example/storm/1"},
    }


def monitor_body() -> dict[str, Any]:
    """A PagerDuty trigger; ``DEDUP`` is replaced per request by the wrk script."""
    return {
        "routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "DEDUP",
        "client": "storm monitor", "client_url": "https://monitor.example/storm",
        "payload": {"summary": "checkout p99 above 2 s", "source": "prom-eu-1",
                    "severity": "error", "component": "checkout-api", "group": "shop",
                    "class": "latency", "custom_details": {"p99_ms": 2310, "region": "eu"}},
    }


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its children so far (Linux ``/proc``)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return total
    return total + sum(process_cpu(int(c)) for c in children)


@dataclass
class Run:
    target: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms: float
    errors: int
    requests: int
    checks: list[str] = field(default_factory=list)


@dataclass
class Target:
    name: str
    url: str
    path: str
    body: dict[str, Any]
    mode: str
    pid: Callable[[], int]
    baseline: str | None = None
    #: Waits until the work the requests left behind is done (relay, applier).
    settle: Callable[[], None] = lambda: None
    #: Counts what the run wrote; returns lines to print (raises on a lost or doubled event).
    check: Callable[[str, int], list[str]] | None = None
    #: The run id of every round (repeats reuse one id, so their 20 keys stay open).
    fixed_run: str | None = None


class Person:
    """A person listing the newest incidents every 100 ms during a storm (latencies in ms)."""

    def __init__(self, url: str, token: str) -> None:
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, token), daemon=True)
        self._thread.start()

    def _run(self, url: str, token: str) -> None:
        with httpx.Client(base_url=url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                client.get("/api/v1/incidents", params={"limit": 50}).raise_for_status()
                self.latencies.append((time.perf_counter() - started) * 1000)
                self._stop.wait(0.1)

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(60)
        return self.latencies


def wrk(url: str, seconds: int, connections: int, mode: str, token: str, run: str,
        body_file: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s",
         str(SCRIPT), url, "--", mode, token, run, str(body_file)],
        check=True, capture_output=True, text=True, timeout=seconds + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_uvicorn(app: str, port: int, env: dict[str, str], workers: int = 1,
                  log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else None
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        env=env, cwd=ROOT, start_new_session=True, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in 90 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def count(db: Path, sql: str, *args: Any) -> int:
    with sqlite3.connect(db, timeout=30) as conn:
        return int(conn.execute(sql, args).fetchone()[0] or 0)


def table_exists(db: Path, name: str) -> bool:
    return count(db, "SELECT count(*) FROM sqlite_master WHERE name = ?", name) > 0


def wait_until(what: str, done: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit(f"not done after {seconds} s: {what}")
        time.sleep(0.1)


def accepted_events(url: str) -> int:
    """202 answers of ``/v2/enqueue`` so far, from the service's request counter."""
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
        if (line.startswith("tandem_http_requests_total{") and 'route="/v2/enqueue"' in line
                and 'status="202"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def machine() -> list[str]:
    load = os.getloadavg()
    return [f"machine: nproc {os.cpu_count()}, load average {load[0]:.1f} {load[1]:.1f} "
            f"{load[2]:.1f}, Python {pyplatform.python_version()}, {pyplatform.system()} "
            f"{pyplatform.release()}",
            "versions: " + ", ".join(f"{p} {version(p)}" for p in (
                "fastapi", "uvicorn", "sqlalchemy", "aiokafka", "pydantic")) + ", "
            + subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(
                " [")[0].strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench storm", description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", action="store_true",
                        help="also run the create with two uvicorn workers")
    parser.add_argument("--only", default="", help="comma-separated target name prefixes")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: `make wrk` (Debian package wrk)")

    work = Path(tempfile.mkdtemp(prefix="tandem-storm-"))
    broker = EmbeddedBroker(free_port(), log_path=work / "broker.log")
    broker.start()
    secret = "bench-" + uuid.uuid4().hex
    dep_db, inc_db, raw_db = work / "deployments.db", work / "incidents.db", work / "raw.db"
    raw_inc_db = work / "raw-incidents.db"
    env = {**os.environ, "TANDEM_KAFKA_BOOTSTRAP": broker.bootstrap,
           "TANDEM_TOPIC_PREFIX": f"storm{uuid.uuid4().hex[:6]}.", "TANDEM_AUTH_SECRET": secret,
           "TANDEM_VAR_DIR": str(work), "TANDEM_LOG_LEVEL": "WARNING",
           "TANDEM_DEPLOYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{dep_db}",
           "TANDEM_INCIDENTS_DATABASE_URL": f"sqlite+aiosqlite:///{inc_db}",
           "TANDEM_INCIDENTS_ROUTING_KEYS": f"{ROUTING_KEY}=storm",
           "TANDEM_GATE_MODE": "receipt", "BENCH_RAW_DEPLOYMENTS_DB": str(raw_db),
           "BENCH_RAW_INCIDENTS_DB": str(raw_inc_db)}
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for service in ("deployments", "incidents"):
            subprocess.run([sys.executable, "-m", service, "migrate"], env=env, check=True,
                           capture_output=True)
        shutil.copy(dep_db, raw_db)
        shutil.copy(inc_db, raw_inc_db)
        # Each Tandem target on topics of its own: in one stack the deployments service
        # consumes every incident the enqueue storm opens (and the incidents service every
        # deployment), so a shared broker would charge one target's CPU with the other's
        # events, arriving late across rounds.
        own_topics = {name: {**env, "TANDEM_TOPIC_PREFIX": f"{env['TANDEM_TOPIC_PREFIX']}{name}."}
                      for name in ("deployments", "incidents", "deployments2")}
        for prefixed in own_topics.values():
            platform = PlatformSettings(kafka_bootstrap=broker.bootstrap,
                                        topic_prefix=prefixed["TANDEM_TOPIC_PREFIX"])
            asyncio.run(ensure_topics(platform, platform.all_topics()))
        ports = {name: free_port() for name in ("bare", "raw", "deployments", "incidents",
                                                 "deployments2")}
        url = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        apps = {"bare": "bench.bare:create_app", "raw": "bench.raw:create_app",
                "deployments": "deployments.main:create_app",
                "incidents": "incidents.main:create_app"}
        for name, app in apps.items():
            processes[name] = start_uvicorn(app, ports[name], own_topics.get(name, env),
                                            log=work / f"{name}.log")
        if args.workers:
            processes["deployments2"] = start_uvicorn(
                "deployments.main:create_app", ports["deployments2"],
                own_topics["deployments2"], workers=2,
                log=work / "deployments2.log")
        for name, process in processes.items():
            wait_ready(url[name], "/livez" if name in ("bare", "raw") else "/readyz", process)
        token = mint_token(secret, sub="bench-pipeline", role=Role.pipeline,
                           ttl=timedelta(hours=2))
        viewer = mint_token(secret, sub="bench-person", role=Role.viewer,
                            ttl=timedelta(hours=2))

        def outbox_settled(db: Path) -> Callable[[], None]:
            return lambda: wait_until("outbox relayed", lambda: count(
                db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0)

        def incidents_settled() -> None:
            if table_exists(inc_db, "monitor_event"):
                wait_until("monitor events applied", lambda: count(
                    inc_db, "SELECT count(*) FROM monitor_event") == 0)
            outbox_settled(inc_db)()

        def check_new(run: str, accepted: int) -> list[str]:
            incidents = count(inc_db, "SELECT count(*) FROM incident WHERE dedup_key LIKE ?",
                              f"{run}-%")
            keys = count(inc_db, "SELECT count(DISTINCT dedup_key) FROM incident "
                         "WHERE dedup_key LIKE ?", f"{run}-%")
            alerts = count(inc_db, "SELECT sum(alert_count) FROM incident "
                           "WHERE dedup_key LIKE ?", f"{run}-%")
            line = (f"{run}: accepted {accepted}, incidents {incidents}, distinct keys {keys}, "
                    f"alerts counted {alerts}")
            if not (incidents == keys == alerts == accepted):
                raise SystemExit("LOST OR DOUBLED: " + line)
            return [line]

        repeats_accepted = [0]

        def check_repeat(run: str, accepted: int) -> list[str]:
            repeats_accepted[0] += accepted
            incidents = count(inc_db, "SELECT count(*) FROM incident WHERE dedup_key LIKE ?",
                              f"{run}-k%")
            alerts = count(inc_db, "SELECT sum(alert_count) FROM incident "
                           "WHERE dedup_key LIKE ?", f"{run}-k%")
            line = (f"{run}: accepted so far {repeats_accepted[0]}, incidents {incidents} "
                    f"(20 keys), alerts counted {alerts}")
            if incidents != 20 or alerts != repeats_accepted[0]:
                raise SystemExit("LOST OR DOUBLED: " + line)
            return [line]

        pid = {name: (lambda p=p: p.pid) for name, p in processes.items()}
        targets = [
            Target("bare FastAPI: create body", url["bare"], "/api/v1/deployments",
                   deployment_body(), "same", pid["bare"]),
            Target("raw sqlite3: create rows", url["raw"], "/api/v1/deployments",
                   deployment_body(), "same", pid["raw"], baseline="bare FastAPI: create body"),
            Target("Tandem create (receipt, 1 worker)", url["deployments"],
                   "/api/v1/deployments", deployment_body(), "same", pid["deployments"],
                   baseline="bare FastAPI: create body", settle=outbox_settled(dep_db)),
        ]
        if args.workers:
            targets.append(Target(
                "Tandem create (receipt, 2 workers)", url["deployments2"],
                "/api/v1/deployments", deployment_body(), "same", pid["deployments2"],
                baseline="bare FastAPI: create body", settle=outbox_settled(dep_db)))
        targets += [
            Target("bare FastAPI: enqueue body", url["bare"], "/v2/enqueue", monitor_body(),
                   "new", pid["bare"]),
            Target("raw sqlite3: enqueue row", url["raw"], "/v2/enqueue", monitor_body(),
                   "new", pid["raw"], baseline="bare FastAPI: enqueue body"),
            Target("Tandem enqueue, 20 open keys", url["incidents"], "/v2/enqueue",
                   monitor_body(), "repeat", pid["incidents"],
                   baseline="bare FastAPI: enqueue body", settle=incidents_settled,
                   check=check_repeat, fixed_run="rep"),
            Target("Tandem enqueue, new key each", url["incidents"], "/v2/enqueue",
                   monitor_body(), "new", pid["incidents"],
                   baseline="bare FastAPI: enqueue body", settle=incidents_settled,
                   check=check_new),
        ]
        if args.only:
            wanted = [w.strip() for w in args.only.split(",")]
            targets = [t for t in targets if any(t.name.startswith(w) for w in wanted)
                       or t.name.startswith(("bare", "raw"))]
        for line in machine():
            print(line)
        print(f"load: wrk, 1 thread, {args.connections} connections, {args.seconds:g} s per "
              f"target and round, {args.rounds} rounds alternating; loopback; SQLite (WAL); "
              "embedded broker; CPU counted until relay and applier are done\n", flush=True)

        runs: list[Run] = []
        for i, target in enumerate(targets):  # warm-up: imports, pools, page cache, open keys
            body_file = work / f"body{i}.json"
            body_file.write_text(json.dumps(target.body))
            run = target.fixed_run or f"w{i}"
            before = accepted_events(url["incidents"]) if target.check else 0
            if target.mode == "repeat":  # open the 20 keys first, one by one
                for k in range(20):
                    httpx.post(target.url + target.path, timeout=30, json={
                        **target.body, "dedup_key": f"{run}-k{k}"}).raise_for_status()
                target.settle()
            wrk(target.url + target.path, 1, args.connections, target.mode, token, run,
                body_file)
            target.settle()
            if target.check:
                target.check(run, accepted_events(url["incidents"]) - before)
        for rnd in range(args.rounds):
            for i, target in enumerate(targets):
                run = target.fixed_run or f"r{rnd}t{i}"
                before = accepted_events(url["incidents"]) if target.check else 0
                cpu_before = process_cpu(target.pid())
                person = (Person(url["incidents"], viewer) if target.check else None)
                answer = wrk(target.url + target.path, args.seconds, args.connections,
                             target.mode, token, run, work / f"body{i}.json")
                reads = person.stop() if person else []
                target.settle()
                cpu = process_cpu(target.pid()) - cpu_before
                requests = answer["requests"]
                result = Run(target.name, requests / (answer["duration_us"] / 1e6),
                             answer["p50_us"] / 1000, answer["p99_us"] / 1000,
                             cpu / max(requests, 1) * 1000,
                             answer["status_errors"] + answer["socket_errors"], requests)
                if target.check:
                    result.checks = target.check(run, accepted_events(url["incidents"])
                                                 - before)
                if reads:
                    ordered = sorted(reads)
                    result.checks.append(
                        f"a person's GET /api/v1/incidents meanwhile: {len(reads)} reads, p50 "
                        f"{ordered[len(ordered) // 2]:.0f} ms, p99 "
                        f"{ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]:.0f} ms")
                runs.append(result)
                print(f"  round {rnd + 1} {target.name:<36}{result.rps:>7.0f} req/s "
                      f"p99 {result.p99_ms:>7.1f} ms  CPU {result.cpu_ms:.2f} ms/req  "
                      f"errors {result.errors}  {'; '.join(result.checks)}", flush=True)
        report(targets, runs)
        print("\n" + machine()[0])
        if any(r.errors for r in runs):
            raise SystemExit("some requests failed")
    finally:
        for process in processes.values():
            stop(process)
        broker.stop()
    if args.profile:
        from bench.profile import profile_in_process
        profile_in_process(work, env)


def report(targets: list[Target], runs: list[Run]) -> None:
    def median(name: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs if r.target == name)

    print(f"\n{'target (medians over rounds)':<38}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}"
          f"{'CPU ms/req':>11}{'x bare':>8}{'errors':>7}")
    for t in targets:
        rps = median(t.name, "rps")
        ratio = f"{rps / median(t.baseline, 'rps'):.2f}" if t.baseline else "1"
        errors = sum(r.errors for r in runs if r.target == t.name)
        print(f"{t.name:<38}{rps:>8.0f}{median(t.name, 'p50_ms'):>8.1f}"
              f"{median(t.name, 'p99_ms'):>8.1f}{median(t.name, 'cpu_ms'):>11.2f}{ratio:>8}"
              f"{errors:>7}")
