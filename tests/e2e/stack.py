"""The Tandem stack as separate processes, started the way ``tandem dev`` starts it.

Per stack: its own topics (a unique prefix) on the given broker, its own var dir (SQLite files,
logs), its own secret, and one uvicorn process per service on a free port, after
``python -m <service> migrate``. ``TANDEM_E2E_DATABASE=postgresql`` gives each service a fresh
PostgreSQL database instead of its SQLite file.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

from tandem.auth import Role, mint_token
from tandem.kafka import ensure_topics
from tandem.settings import SERVICES, PlatformSettings
from tandem_cli.broker import free_port
from tandem_testing import create_pg_database, drop_pg_database

#: The ``tandem`` console script of this environment, so the CLI runs as users run it.
TANDEM = shutil.which("tandem", path=str(Path(sys.executable).parent)) or "tandem"


class Stack:
    """The services in ``services`` (default: every installed one) as real processes."""

    def __init__(self, bootstrap: str, var_dir: Path, *, services: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        self.services = [s for s in (services or list(SERVICES))
                         if importlib.util.find_spec(s) is not None]
        self.ports = {s: free_port() for s in self.services}
        self.secret = "e2e-secret-" + uuid.uuid4().hex
        self.prefix = f"e{uuid.uuid4().hex[:10]}."
        self.env = {
            **os.environ,
            "TANDEM_KAFKA_BOOTSTRAP": bootstrap,
            "TANDEM_TOPIC_PREFIX": self.prefix,
            "TANDEM_VAR_DIR": str(var_dir),
            "TANDEM_AUTH_SECRET": self.secret,
            "TANDEM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "TANDEM_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "TANDEM_KAFKA_REQUEST_TIMEOUT_MS": "5000",
            "TANDEM_RELAY_POLL_INTERVAL_S": "0.2",
            "TANDEM_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.platform = PlatformSettings(
            var_dir=var_dir, kafka_bootstrap=bootstrap, topic_prefix=self.prefix,
            auth_secret=self.secret, kafka_session_timeout_ms=2000,
            kafka_heartbeat_interval_ms=500, kafka_request_timeout_ms=5000,
        )
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.pg_databases: list[str] = []
        #: Settings of one service on top of ``env`` (such as ``TANDEM_GATE_MODE``).
        self.service_env: dict[str, dict[str, str]] = {}

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Stack:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        asyncio.run(ensure_topics(self.platform, self.platform.all_topics()))
        if os.environ.get("TANDEM_E2E_DATABASE") == "postgresql":
            # Each service its own fresh PostgreSQL database (default: a SQLite file in var/).
            for name in self.services:
                database = asyncio.run(create_pg_database())
                self.pg_databases.append(database)
                self.env[f"TANDEM_{name.upper()}_DATABASE_URL"] = (
                    f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}")
        migrations = {s: subprocess.Popen([sys.executable, "-m", s, "migrate"], env=self.env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                      for s in self.services}
        for name, m in migrations.items():
            out, _ = m.communicate(timeout=120)
            if m.returncode != 0:
                raise RuntimeError(f"{name} migrate failed:\n{out.decode(errors='replace')}")
        for name in self.services:
            self._spawn(name)
        self.wait_ready(*self.services)
        return self

    def _spawn(self, name: str) -> None:
        log = open(self.log_path(name), "ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", f"{name}.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.ports[name]), "--no-access-log",
             "--log-level", "warning"],
            env={**self.env, **self.service_env.get(name, {})}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def wait_ready(self, *names: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names)
        while pending:
            for name in list(pending):
                if self.processes[name].poll() is not None:
                    raise RuntimeError(f"{name} exited while starting:\n{self.log_tail(name)}")
                try:
                    if httpx.get(f"{self.url(name)}/readyz", timeout=1).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready in {timeout}s: {sorted(pending)}")
            time.sleep(0.1)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hooks, no flush, no goodbye to the consumer group."""
        process = self.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def restart(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start ``name`` again (after ``kill``, or stopping it first), with ``env`` if given."""
        if self.processes[name].poll() is None:
            self._terminate([self.processes[name]])
        if env is not None:
            self.service_env[name] = env
        self._spawn(name)
        self.wait_ready(name)

    def use_gate_mode(self, mode: str) -> None:
        """Run the deployments service with ``TANDEM_GATE_MODE=mode``, restarting it if needed."""
        current = {**self.env, **self.service_env.get("deployments", {})}.get("TANDEM_GATE_MODE")
        if current != mode:
            self.restart("deployments", env={"TANDEM_GATE_MODE": mode})

    def stop(self) -> None:
        self._terminate(list(self.processes.values()))
        for database in self.pg_databases:
            asyncio.run(drop_pg_database(database))

    @staticmethod
    def _terminate(processes: list[subprocess.Popen[bytes]]) -> None:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    # --- access ----------------------------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def log_path(self, name: str) -> Path:
        return self.var_dir / f"{name}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_path(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def token(self, role: Role | str, sub: str | None = None) -> str:
        return mint_token(self.secret, sub=sub or f"e2e-{role}", role=role,
                          ttl=timedelta(hours=2))

    def headers(self, role: Role | str, sub: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub)}"}

    def cli_env(self, role: Role | str | None = None, sub: str | None = None) -> dict[str, str]:
        """The environment a user's shell would have: service URLs, token, broker, prefix."""
        env = {**self.env, **{f"TANDEM_URL_{s.upper()}": self.url(s) for s in self.services}}
        env.pop("TANDEM_TOKEN", None)
        if role is not None:
            env["TANDEM_TOKEN"] = self.token(role, sub)
        return env


class CliResult:
    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


class CliProcess:
    """A ``tandem`` command running as its own process (for ``--wait``).

    With ``terminal``, its stderr is a pseudo-terminal, as in a person's shell.
    """

    def __init__(self, process: asyncio.subprocess.Process, terminal: int | None = None) -> None:
        self.process = process
        self._terminal = terminal
        self._screen = bytearray()
        if terminal is not None:
            asyncio.get_running_loop().add_reader(terminal, self._read_terminal)

    def _read_terminal(self) -> None:
        assert self._terminal is not None
        try:
            self._screen += os.read(self._terminal, 65536)
        except OSError:  # the child closed its side
            self._close_terminal()

    def _close_terminal(self) -> None:
        if self._terminal is not None:
            asyncio.get_running_loop().remove_reader(self._terminal)
            os.close(self._terminal)
            self._terminal = None

    async def __aenter__(self) -> CliProcess:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # A scenario that failed half-way leaves no CLI behind.
        if self.process.returncode is None:
            self.process.kill()
            await self.process.communicate()
        self._close_terminal()

    async def result(self, timeout: float = 60) -> CliResult:
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        if self._terminal is not None:
            self._read_terminal()
            self._close_terminal()
        if err is None:
            err = bytes(self._screen)
        return CliResult(self.process.returncode or 0, out.decode(), err.decode())


async def cli_start(env: dict[str, str], *args: str, terminal: bool = False) -> CliProcess:
    """Start ``tandem *args``; ``terminal`` gives it an 80-column terminal for stderr (a
    spinner's)."""
    if not terminal:
        process = await asyncio.create_subprocess_exec(
            TANDEM, *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        return CliProcess(process)
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    try:
        process = await asyncio.create_subprocess_exec(
            TANDEM, *args, env={**env, "COLUMNS": "80"}, stdout=asyncio.subprocess.PIPE,
            stderr=follower, stdin=asyncio.subprocess.DEVNULL)
    finally:
        os.close(follower)
    return CliProcess(process, terminal=leader)


async def cli(env: dict[str, str], *args: str, timeout: float = 60) -> CliResult:
    """Run ``tandem *args`` to the end, as a user's shell would."""
    return await (await cli_start(env, *args)).result(timeout)
