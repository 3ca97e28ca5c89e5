"""Helpers the propagation, relay, catch-up and memory benchmarks share: machine facts,
percentiles, an embedded broker and Tandem service processes on loopback."""

from __future__ import annotations

import os
import platform as pyplatform
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx

from tandem.auth import mint_token
from tandem_cli.broker import EmbeddedBroker, free_port


def machine() -> str:
    """One line of machine facts to print beside every figure."""
    load = os.getloadavg()
    return (f"{os.cpu_count()} CPUs, Python {pyplatform.python_version()}, "
            f"{pyplatform.system()} {pyplatform.release()}, "
            f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB, from ``/proc``."""
    fields = dict(line.split(":", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


@contextmanager
def broker() -> Iterator[EmbeddedBroker]:
    b = EmbeddedBroker(free_port())
    b.start()
    try:
        yield b
    finally:
        b.stop()


class Services:
    """Tandem services as one-worker uvicorn processes on loopback, each on SQLite in ``var``."""

    def __init__(self, bootstrap: str, var: Path, names: list[str],
                 env: dict[str, str] | None = None) -> None:
        self.var = var
        self.names = names
        self.secret = "bench-" + uuid.uuid4().hex
        self.ports = {n: free_port() for n in names}
        self.env = {**os.environ, "TANDEM_KAFKA_BOOTSTRAP": bootstrap,
                    "TANDEM_TOPIC_PREFIX": f"b{uuid.uuid4().hex[:8]}.",
                    "TANDEM_VAR_DIR": str(var), "TANDEM_AUTH_SECRET": self.secret,
                    "TANDEM_LOG_LEVEL": "WARNING", "TANDEM_RELAY_POLL_INTERVAL_S": "0.2",
                    **(env or {})}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Services:
        self.var.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            if name != "dashboard":
                subprocess.run([sys.executable, "-m", name, "migrate"], env=self.env,
                               check=True, capture_output=True, timeout=120)
        for name in self.names:
            log = open(self.var / f"{name}.log", "ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", f"{name}.main:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", str(self.ports[name]), "--no-access-log",
                 "--log-level", "warning"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            log.close()
        deadline = time.monotonic() + 90
        for name in self.names:
            while True:
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} did not become ready; see {self.var}")
                time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.processes.values():
            p.terminate()
        for p in self.processes.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def headers(self, role: str) -> dict[str, str]:
        token = mint_token(self.secret, sub=f"bench-{role}", role=role, ttl=timedelta(hours=2))
        return {"Authorization": f"Bearer {token}"}
