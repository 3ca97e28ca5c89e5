"""Real service processes for the scale-out proof, watched only from outside.

Each instance is a ``uvicorn <service>.main:create_app --factory`` process, started the way the
Kubernetes Deployment starts it. Which instance relays a service's outbox is read from
PostgreSQL (the advisory lock in ``pg_locks``, mapped to a process through its TCP socket), and
what each instance did from its ``/metrics``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tandem.outbox import _lock_key
from tandem_cli.broker import free_port


@dataclass
class Instance:
    """One service process."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no lock release, no group leave."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


def service_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without inherited Tandem settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_")}
    return {**env, **settings}


def start_instance(service: str, name: str, env: dict[str, str], log_dir: Path) -> Instance:
    port = free_port()
    log = log_dir / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                f"{service}.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Instance(name, port, process, log)


async def migrate_concurrently(service: str, env: dict[str, str], copies: int) -> list[int]:
    """``python -m <service> migrate`` from ``copies`` pods at once, as init containers do;
    a failed one runs again once (the kubelet restarts a failed init container)."""

    async def run() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            service,
            "migrate",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait()

    first = await asyncio.gather(*(run() for _ in range(copies)))
    again = [await run() if code != 0 else 0 for code in first]
    return [*first, *again]


async def wait_ready(instance: Instance, client: httpx.AsyncClient, timeout: float = 90) -> None:
    """Ready (database answers) and its consumers connected to the broker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert instance.alive(), f"{instance.name} exited:\n{instance.output()}"
        try:
            r = await client.get(f"{instance.url}/readyz", timeout=2)
            if r.status_code == 200 and r.json().get("broker") in ("connected", "n/a"):
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{instance.name} not ready in {timeout}s:\n{instance.output()}")


async def metric(client: httpx.AsyncClient, instance: Instance, name: str, **labels: str) -> float:
    """The sum of ``name`` samples with ``labels`` in the instance's ``/metrics``."""
    text = (await client.get(f"{instance.url}/metrics", timeout=5)).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def tcp_ports_of(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` holds (Linux /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in list(fd_dir.iterdir()) if fd_dir.exists() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class RelayWatch:
    """Samples which process holds a service's relay lock, from PostgreSQL's point of view."""

    service: str
    database: str
    instances: list[Instance]
    samples: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    #: Local port -> instance, remembered so a killed holder's lingering session is named.
    ports: dict[int, str] = field(default_factory=dict)

    async def holders(self, conn: asyncpg.Connection) -> tuple[str, ...]:
        key = _lock_key(self.service) & 0xFFFFFFFFFFFFFFFF
        rows = await conn.fetch(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.datname = $1 "
            "AND l.classid::bigint = $2 AND l.objid::bigint = $3 AND l.objsubid = 1",
            self.database,
            key >> 32,
            key & 0xFFFFFFFF,
        )
        names = []
        for row in rows:
            port = row["client_port"]
            if port not in self.ports:
                for instance in self.instances:
                    if instance.alive() and port in tcp_ports_of(instance.process.pid):
                        self.ports[port] = instance.name
            names.append(self.ports.get(port, f"unknown:{port}"))
        return tuple(sorted(names))

    async def run(self, dsn: str, interval: float = 0.05) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while True:
                self.samples.append((time.monotonic(), await self.holders(conn)))
                await asyncio.sleep(interval)
        finally:
            await conn.close()

    def leaders(self) -> list[str]:
        """The successive relay leaders seen (consecutive repeats folded)."""
        out: list[str] = []
        for _, names in self.samples:
            if len(names) == 1 and (not out or out[-1] != names[0]):
                out.append(names[0])
        return out

    def current(self) -> str | None:
        for _, names in reversed(self.samples):
            if names:
                return names[0]
        return None
