"""A ``tandem dev`` stack as the drills see it: the one command a person runs, its processes
found by their parent, and the ``url``/``headers``/``services``/``platform`` that ``load.Load``
and ``load.verify`` use.

``tandem dev`` binds the fixed ports (8001-8004, 9092), so a drill runs it in a network namespace
of its own (``tests/faults/dev_drills.py``); nothing here depends on that.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

from tandem.auth import Role, mint_token
from tandem.settings import SERVICES, PlatformSettings

#: The ``tandem`` console script beside this interpreter, so the stack starts as a user's does.
TANDEM = str(Path(sys.executable).parent / "tandem")
#: What a drill's stack runs with (the brief's settings for the embedded broker in tests).
DRILL_ENV = {
    "TANDEM_KAFKA_SESSION_TIMEOUT_MS": "2000",
    "TANDEM_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
    "TANDEM_LOG_LEVEL": "WARNING",
}
#: ``tandem dev`` stops its services within 20 s (then kills them); a bound beyond that.
STOP_TIMEOUT_S = 45.0


def children_of(pid: int) -> dict[int, str]:
    """The live children of ``pid`` (pid -> command line), read from /proc."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the ppid follows the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2:].split()[0] != "Z"


class DevStack:
    """``tandem dev`` on ``var_dir``: started, watched, signalled and stopped by the drill."""

    def __init__(self, var_dir: Path, env: dict[str, str] | None = None) -> None:
        self.var_dir = var_dir
        #: Every process of the stack but the broker (what ``verify`` checks the health of).
        self.services = list(SERVICES)
        self.env = {**os.environ, **DRILL_ENV, "TANDEM_VAR_DIR": str(var_dir), **(env or {})}
        for name in ("TANDEM_KAFKA_BOOTSTRAP", "TANDEM_AUTH_SECRET", "TANDEM_TOPIC_PREFIX"):
            if name not in (env or {}):
                self.env.pop(name, None)  # the embedded defaults, as `make run` has them
        self.platform = PlatformSettings(
            var_dir=var_dir, kafka_session_timeout_ms=2000, kafka_heartbeat_interval_ms=500)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        #: Every process any run of this stack had (pid -> command), to prove none is left.
        self.seen: dict[int, str] = {}
        self._secret: str | None = None

    # --- life cycle ------------------------------------------------------------------------

    @property
    def out_path(self) -> Path:
        return self.var_dir.parent / f"dev-{self.runs}.out"

    @property
    def err_path(self) -> Path:
        return self.var_dir.parent / f"dev-{self.runs}.err"

    def start(self, timeout: float = 180) -> float:
        """Run ``tandem dev`` and wait for its ``ready`` line; returns the seconds it took.

        The wait is for readiness, not a speed check: six services migrating and starting took
        over 120 s on this two-core machine under load (a few seconds when it is quiet)."""
        self.runs += 1
        started = time.monotonic()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            # Its own process group, as a shell's foreground job: SIGINT to it is a Ctrl-C.
            self.process = subprocess.Popen([TANDEM, "dev"], env=self.env, stdout=out,
                                            stderr=err, stdin=subprocess.DEVNULL,
                                            cwd=self.var_dir.parent, start_new_session=True)
        deadline = started + timeout
        while "ready in" not in self.stdout():
            if self.process.poll() is not None:
                raise RuntimeError(f"tandem dev exited with {self.process.returncode} while "
                                   f"starting:\n{self.stdout()}\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"tandem dev not ready in {timeout}s:\n{self.stderr()}")
            self.note_processes()
            time.sleep(0.2)
        self.note_processes()
        return time.monotonic() - started

    def interrupt(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float]:
        """Ctrl-C: SIGINT to ``tandem dev``'s process group; returns its exit code and how long
        it took to stop."""
        assert self.process is not None
        self.note_processes()
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> list[str]:
        """Stop whatever still runs, whatever happened; returns what had to be killed (an empty
        list when ``tandem dev`` ended everything itself)."""
        killed: list[str] = []
        if self.process is not None and self.process.poll() is None:
            self.note_processes()
            try:
                self.interrupt()
            except (subprocess.TimeoutExpired, ProcessLookupError):
                self.process.kill()
                self.process.wait()
                killed.append(f"tandem dev {self.process.pid}")
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in self.seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid, command in self.seen.items():
            if alive(pid):
                with_signal(pid, signal.SIGKILL)
                killed.append(f"{pid} {command[:80]}")
        return killed

    def note_processes(self) -> None:
        if self.process is not None:
            self.seen.update(children_of(self.process.pid))

    # --- the processes ---------------------------------------------------------------------

    def pid(self, name: str) -> int:
        """The running process of ``name`` (a service, or ``broker``)."""
        assert self.process is not None
        marker = "tansu" if name == "broker" else f"{name}.main:create_app"
        for pid, command in children_of(self.process.pid).items():
            if marker in command:
                self.seen[pid] = command
                return pid
        raise LookupError(f"{name} is not running under tandem dev")

    def signal(self, name: str, signum: int) -> int:
        pid = self.pid(name)
        with_signal(pid, signum)
        return pid

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace") if self.err_path.exists() else ""

    def all_stderr(self) -> str:
        """What every run of ``tandem dev`` on this stack wrote to stderr, run by run."""
        paths = sorted(self.var_dir.parent.glob("dev-*.err"), key=lambda p: p.stat().st_mtime)
        return "".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in paths)

    def restart_lines(self, name: str) -> list[str]:
        """The supervisor's lines about ``name`` (a service, or ``broker``) in this run: its
        exit, then its restart."""
        pattern = ("(error: )?the embedded broker (exited with|did not start)" if name == "broker"
                   else rf"{re.escape(name)} (exited with|restarted)")
        return [line for line in self.stderr().splitlines() if re.match(pattern, line)]

    def ready(self, name: str) -> bool:
        try:
            r = httpx.get(f"{self.url(name)}/readyz", timeout=2)
        except httpx.HTTPError:
            return False
        return r.status_code == 200 and r.json().get("broker") == "connected"

    def wait_ready(self, *names: str, timeout: float = 60) -> float:
        """Until each of ``names`` (default: all) is ready with its broker connected."""
        started = time.monotonic()
        pending = list(names or self.services)
        while pending:
            pending = [n for n in pending if not self.ready(n)]
            if pending and time.monotonic() - started > timeout:
                raise TimeoutError(f"not ready with the broker in {timeout}s: {pending}")
            if pending:
                time.sleep(0.3)
        return time.monotonic() - started

    # --- what Load and verify use ----------------------------------------------------------

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{SERVICES[name]}"

    @property
    def secret(self) -> str:
        """The secret ``tandem dev`` generated under its var dir on first start."""
        if self._secret is None:
            self._secret = (self.var_dir / "auth-secret").read_text().strip()
        return self._secret

    def headers(self, role: Role | str, sub: str | None = None) -> dict[str, str]:
        token = mint_token(self.secret, sub=sub or f"drill-{role}", role=role,
                           ttl=timedelta(hours=1))
        return {"Authorization": f"Bearer {token}"}

    def cli_env(self, role: Role | str = Role.viewer) -> dict[str, str]:
        """A user's shell beside this stack: the default URLs and broker, and a token."""
        return {**self.env, "TANDEM_TOKEN": self.headers(role)["Authorization"][7:]}


def with_signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass
