"""``python -m bench``: POST /api/v1/deployments (gate included) against a bare FastAPI endpoint.

Starts an embedded broker, migrates a fresh SQLite database, runs the deployments service and
the baseline as one-worker uvicorn processes on loopback, drives each with the same bounded
load (fixed concurrency and request count, async httpx), prints both and the ratio, checks that
every event of the run reached the broker, then stops everything it started.

Options: ``--requests N`` (default 2000), ``--concurrency C`` (16), ``--rounds R`` (2),
``--profile`` (also profile the create path in-process and print where the time goes).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import platform as pyplatform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tandem.auth import Role, mint_token
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    #: CPU seconds the server process spent meanwhile (user + system).
    server_cpu_s: float = 0.0

    @property
    def cpu_ms(self) -> float:
        return self.server_cpu_s / self.requests * 1000

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def body(i: int, run: str) -> dict[str, Any]:
    """A realistic pipeline body: three commits, artifact, ref, pipeline run."""
    now = datetime.now(UTC)
    return {
        "service": f"bench-{i % 8}", "environment": "production", "version": f"1.{i}.0",
        "artifact": f"pkg:oci/bench@sha256:{uuid.uuid4().hex}", "ref": "refs/heads/main",
        "commits": [{"sha": uuid.uuid4().hex[:12],
                     "committed_at": (now - timedelta(hours=k + 1)).isoformat()}
                    for k in range(3)],
        "pipeline": {"id": f"{run}-{i}", "run_url": f"https://ci.example/{run}/{i}"},
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(name: str, url: str, token: str, *, requests: int, concurrency: int,
               offset: int, run: str, pid: int) -> Result:
    """``requests`` creates over ``concurrency`` keep-alive connections."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(offset, offset + requests):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                i = queue.get_nowait()
                started = time.perf_counter()
                r = await client.post("/api/v1/deployments", json=body(i, run), headers={
                    **headers, "Idempotency-Key": f"{run}-{i}"})
                latencies.append((time.perf_counter() - started) * 1000)
                if r.status_code != 201:
                    errors += 1

        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu_before
    return Result(name, requests, elapsed, latencies, errors, cpu)


def start_uvicorn(app: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port",
         str(port), "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=env, cwd=ROOT, start_new_session=True)


def wait_ready(url: str, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}")
        try:
            if httpx.get(url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in 60 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def unpublished(db_path: Path) -> tuple[int, int]:
    with sqlite3.connect(db_path) as conn:
        total = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()[0]
    return int(total), int(pending)


def report(results: list[Result]) -> None:
    print(f"{'target':<34}{'req':>6}{'req/s':>8}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}"
          f"{'CPU ms/req':>11}{'errors':>7}")
    for r in results:
        print(f"{r.name:<34}{r.requests:>6}{r.rps:>8.0f}{r.pct(50):>8.1f}{r.pct(90):>8.1f}"
              f"{r.pct(99):>8.1f}{r.cpu_ms:>11.2f}{r.errors:>7}")


async def profile_create(env: dict[str, str], n: int = 400) -> None:
    """The create path in-process under cProfile (no uvicorn, no load client in the way)."""
    import cProfile
    import pstats

    from deployments.config import DeploymentsSettings
    from deployments.main import create_app
    from tandem_testing import running_service

    platform = PlatformSettings()
    settings = DeploymentsSettings()
    app = create_app(platform, settings)
    token = mint_token(platform.jwt_secret, sub="bench", role=Role.pipeline,
                       ttl=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    async with running_service(app) as client:
        for i in range(50):
            await client.post("/api/v1/deployments", json=body(i, "warm"),
                              headers={**headers, "Idempotency-Key": f"warm-{i}"})
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            await client.post("/api/v1/deployments", json=body(i, "prof"),
                              headers={**headers, "Idempotency-Key": f"prof-{i}"})
        profiler.disable()
    stats = pstats.Stats(profiler)
    by_package: dict[str, float] = {}
    for (path, _, _), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[package_of(path)] = by_package.get(package_of(path), 0.0) + tottime
    total = sum(by_package.values())
    print(f"\nin-process profile of {n} creates: own CPU time by package "
          f"({total / n * 1000:.2f} ms a request, relay and consumer included)")
    for name, spent in sorted(by_package.items(), key=lambda kv: -kv[1])[:14]:
        print(f"  {name:<28}{spent / n * 1000:>8.3f} ms  {spent / total:>6.1%}")
    print("\ntop functions by own time:")
    stats.sort_stats("tottime").print_stats(25)


def package_of(path: str) -> str:
    """``sqlalchemy`` for a file under site-packages/sqlalchemy, ``tandem`` for the library."""
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    for marker in ("/shared/src/", "/services/deployments/src/", "/bench/"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[0] if marker != "/bench/" else "bench"
    if path.startswith("~") or path.startswith("<"):
        return "builtins (C)"
    return "stdlib: " + Path(path).stem


def ingest(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench ingest", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="tandem-bench-"))
    broker = EmbeddedBroker(free_port(), log_path=work / "broker.log")
    broker.start()
    db_path = work / "deployments.db"
    secret = "bench-" + uuid.uuid4().hex
    env = {**os.environ, "TANDEM_KAFKA_BOOTSTRAP": broker.bootstrap,
           "TANDEM_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.", "TANDEM_AUTH_SECRET": secret,
           "TANDEM_VAR_DIR": str(work), "TANDEM_LOG_LEVEL": "WARNING",
           "TANDEM_DEPLOYMENTS_DATABASE_URL": f"sqlite+aiosqlite:///{db_path}",
           "TANDEM_GATE_MODE": "receipt"}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([sys.executable, "-m", "deployments", "migrate"], env=env, check=True)
        platform = PlatformSettings(kafka_bootstrap=broker.bootstrap,
                                    topic_prefix=env["TANDEM_TOPIC_PREFIX"])
        asyncio.run(ensure_topics(platform, platform.all_topics()))
        service_port, bare_port = free_port(), free_port()
        service_url = f"http://127.0.0.1:{service_port}"
        bare_url = f"http://127.0.0.1:{bare_port}"
        processes.append(start_uvicorn("deployments.main:create_app", service_port, env))
        processes.append(start_uvicorn("bench.bare:create_app", bare_port, env))
        wait_ready(service_url, "/readyz", processes[0])
        wait_ready(bare_url, "/livez", processes[1])
        token = mint_token(secret, sub="bench-pipeline", role=Role.pipeline,
                           ttl=timedelta(hours=1))
        n, c = args.requests, args.concurrency
        print(f"machine: nproc {os.cpu_count()}, Python {pyplatform.python_version()}, "
              f"{pyplatform.system()} {pyplatform.release()}")
        print(f"load: {n} POST /api/v1/deployments per target and round, concurrency {c}, "
              f"{args.rounds} rounds, loopback, one uvicorn worker each; service on SQLite "
              "(WAL), gate mode receipt, production, embedded broker\n")

        async def run_all() -> list[Result]:
            results = []
            # Warm both up (imports, connection pools, SQLite page cache).
            bare_pid, service_pid = processes[1].pid, processes[0].pid
            await load("warm-up", bare_url, token, requests=200, concurrency=c, offset=0,
                       run="warm", pid=bare_pid)
            await load("warm-up", service_url, token, requests=200, concurrency=c, offset=0,
                       run="warm", pid=service_pid)
            for rnd in range(args.rounds):
                results.append(await load(f"bare FastAPI (validate only) #{rnd + 1}", bare_url,
                                          token, requests=n, concurrency=c, offset=0,
                                          run=f"b{rnd}", pid=bare_pid))
                results.append(await load(f"deployments create #{rnd + 1}", service_url, token,
                                          requests=n, concurrency=c, offset=0, run=f"s{rnd}",
                                          pid=service_pid))
            return results

        results = asyncio.run(run_all())
        report(results)
        bare = statistics.median(r.rps for r in results if r.name.startswith("bare"))
        svc = statistics.median(r.rps for r in results if r.name.startswith("deployments"))
        print(f"\nmedian throughput: service {svc:.0f} req/s, bare {bare:.0f} req/s")
        bare_cpu = statistics.median(r.cpu_ms for r in results if r.name.startswith("bare"))
        svc_cpu = statistics.median(r.cpu_ms for r in results
                                    if r.name.startswith("deployments"))
        print(f"ratio service / bare: {svc / bare:.2f} (throughput)")
        print(f"server CPU per request: service {svc_cpu:.2f} ms, bare {bare_cpu:.2f} ms "
              f"(bare / service {bare_cpu / svc_cpu:.2f}; the service's relay is included)")
        deadline = time.monotonic() + 60
        total, pending = unpublished(db_path)
        while pending and time.monotonic() < deadline:
            time.sleep(0.2)
            total, pending = unpublished(db_path)
        print(f"events written {total}, not yet on the broker after the run: {pending}")
        if any(r.errors for r in results):
            raise SystemExit("some requests failed")
    finally:
        for process in processes:
            stop(process)
        broker.stop()
    if args.profile:
        os.environ.update({k: v for k, v in env.items()
                           if k.startswith("TANDEM_") and k != "TANDEM_KAFKA_BOOTSTRAP"})
        os.environ["TANDEM_DEPLOYMENTS_DATABASE_URL"] = f"sqlite+aiosqlite:///{work / 'p.db'}"
        subprocess.run([sys.executable, "-m", "deployments", "migrate"], env=os.environ,
                       check=True)
        pbroker = EmbeddedBroker(free_port(), log_path=work / "broker-profile.log")
        pbroker.start()
        os.environ["TANDEM_KAFKA_BOOTSTRAP"] = pbroker.bootstrap
        try:
            asyncio.run(profile_create(env))
        finally:
            pbroker.stop()


BENCHMARKS = ("ingest", "propagation", "relay", "catchup", "memory")


def main() -> None:
    """``python -m bench`` runs every benchmark; ``python -m bench NAME [options]`` runs one."""
    if len(sys.argv) > 1 and sys.argv[1] in BENCHMARKS:
        chosen, rest = [sys.argv[1]], sys.argv[2:]
    elif len(sys.argv) > 1 and sys.argv[1].startswith("-"):
        chosen, rest = ["ingest"], sys.argv[1:]  # options of the ingest benchmark
    elif len(sys.argv) > 1:
        raise SystemExit(f"unknown benchmark {sys.argv[1]!r}; one of: {', '.join(BENCHMARKS)}")
    else:
        chosen, rest = list(BENCHMARKS), []
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        if name == "ingest":
            ingest(rest)
        else:
            importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    main()
