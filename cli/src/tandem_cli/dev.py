"""``tandem dev``: the whole embedded stack in one command, supervised, stopped cleanly by Ctrl-C.

A service (or the embedded broker) that dies is started again with a growing back-off and a
line saying so; the rest keep running. What a dead process had accepted is in its database's
outbox and is relayed once it is back; a restarted broker starts empty and every service
publishes its retained history to it again (``tandem.outbox``), so nothing is lost. For that
history to come before anything new, the services that publish are started again with a new
broker (the dashboard keeps running and reads it from its start).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import typer

from tandem.auth import Role, mint_token
from tandem.kafka import ensure_topics
from tandem.outbox import SETTLE_S
from tandem.settings import SERVICES, TOPIC_OWNERS, PlatformSettings
from tandem_cli.broker import EmbeddedBroker, port_open

#: Back-off before restarting a process that died: doubles per quick death, up to this.
MAX_BACKOFF_S = 30.0
#: A process that stayed up this long is healthy again: its back-off starts over.
HEALTHY_AFTER_S = 60.0
BROKER_PORT = 9092


def _die_with_parent() -> None:
    # The services end with tandem dev even if it is killed outright (PR_SET_PDEATHSIG).
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _installed(service: str) -> bool:
    return importlib.util.find_spec(service) is not None


class StartupError(Exception):
    """The stack cannot start; the message is the one line the user reads."""


@dataclass
class Supervised:
    """One process of the stack and its restart bookkeeping."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    backoff_s: float = 1.0
    restart_at: float | None = None
    restarts: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, env=self.env,
                                        preexec_fn=_die_with_parent, start_new_session=True)
        self.started_at = time.monotonic()
        self.restart_at = None

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()


def _stop(processes: list[subprocess.Popen[bytes]], grace_s: float = 20) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _taken_ports(services: dict[str, int], embedded: bool) -> list[tuple[str, int]]:
    ports = dict(services)
    if embedded:
        ports["broker"] = BROKER_PORT
    return [(name, port) for name, port in ports.items() if port_open("127.0.0.1", port)]


def _tandem_answers(port: int) -> bool:
    """Whether a Tandem service already answers on ``port`` (a second ``tandem dev``)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False


def check_ports(services: dict[str, int], embedded: bool) -> None:
    """One clear line, before anything starts, when a port of the stack is taken."""
    taken = _taken_ports(services, embedded)
    if not taken:
        return
    listed = ", ".join(f"{port} ({name})" for name, port in taken)
    if any(name != "broker" and _tandem_answers(port) for name, port in taken):
        raise StartupError(f"Tandem is already running here (ports {listed} answer); stop that "
                           "one first (Ctrl-C in its terminal)")
    raise StartupError(f"port{'s' if len(taken) > 1 else ''} {listed} already in use by another "
                       "program; free them, or run this stack in its own network namespace")


def _secure_var_dir(platform: PlatformSettings) -> None:
    platform.var_dir.mkdir(parents=True, exist_ok=True)
    platform.var_dir.chmod(0o700)


def dev() -> None:
    platform = PlatformSettings()
    services = {name: port for name, port in SERVICES.items() if _installed(name)}
    embedded = "TANDEM_KAFKA_BOOTSTRAP" not in os.environ
    broker: EmbeddedBroker | None = None
    supervised: list[Supervised] = []
    stopping = False

    def on_signal(signum: int, _: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    # Both, explicitly: a shell that backgrounds tandem dev may have SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    try:
        check_ports(services, embedded)
        _secure_var_dir(platform)
        secret = platform.jwt_secret
        if embedded:
            broker = EmbeddedBroker(BROKER_PORT, log_path=platform.var_dir / "broker.log")
            try:
                broker.start()
            except RuntimeError as exc:
                broker = None
                raise StartupError(f"the embedded broker did not start: {exc}") from None
            typer.echo(f"broker    embedded Tansu on {broker.bootstrap}")
        else:
            typer.echo(f"broker    {platform.kafka_bootstrap} (TANDEM_KAFKA_BOOTSTRAP)")
        asyncio.run(_create_topics(platform))
        migrations = [subprocess.Popen([sys.executable, "-m", name, "migrate"])
                      for name in services]
        if any(m.wait() != 0 for m in migrations):
            raise StartupError("a migration failed (see above)")
        # The terminal shows this command's own lines; the services' info logs (every readiness
        # poll, every request) only when asked for with TANDEM_LOG_LEVEL.
        # The notifier may call receivers on this machine (a local test receiver); production
        # leaves loopback refused.
        env = {"TANDEM_LOG_LEVEL": "WARNING", "TANDEM_NOTIFIER_ALLOW_LOOPBACK": "true",
               **os.environ, "TANDEM_AUTH_SECRET": secret}
        for name, port in services.items():
            process = Supervised(name, [
                sys.executable, "-m", "uvicorn", f"{name}.main:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--timeout-graceful-shutdown", "10"], env)
            process.start()
            supervised.append(process)
        _wait_ready(services, supervised)
        typer.echo(f"ready in {time.monotonic() - started:.1f}s")
        _print_welcome(services, secret)
        while True:
            broker = _supervise(supervised, broker, platform)
            time.sleep(0.5)
    except StartupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        _stop([s.process for s in supervised if s.process is not None])
        if broker is not None:
            broker.stop()
        if supervised or broker is not None:
            typer.echo("stopped")


def _print_welcome(services: dict[str, int], secret: str) -> None:
    for name, port in services.items():
        typer.echo(f"{name:<12} http://127.0.0.1:{port}  (docs: /docs)")
    typer.echo("tokens (30 days):")
    for role in Role:
        token = mint_token(secret, sub=f"dev-{role.value}", role=role, ttl=timedelta(days=30))
        typer.echo(f"  {role.value:<12} {token}")
    if "dashboard" in services:
        board_token = mint_token(secret, sub="dev-board", role=Role.viewer,
                                 ttl=timedelta(days=30))
        typer.echo(f"board        http://127.0.0.1:{services['dashboard']}/"
                   f"?access_token={board_token}")
    typer.echo("Ctrl-C stops everything.")


def _supervise(supervised: list[Supervised], broker: EmbeddedBroker | None,
               platform: PlatformSettings) -> EmbeddedBroker | None:
    """One round: restart what died (after its back-off); returns the broker in use."""
    now = time.monotonic()
    if broker is not None and broker.process is not None and broker.process.poll() is not None:
        code = broker.process.returncode
        owners = [s for s in supervised if s.name in TOPIC_OWNERS and s.exited() is None]
        typer.echo(f"the embedded broker exited with {code}; starting a new one, and "
                   f"{', '.join(s.name for s in owners) or 'no service'} again to publish "
                   "their retained events to it before anything new", err=True)
        broker.process = None
        # A new broker holds none of the events: each service must publish its history to it
        # before anything new, or consumers that apply a newer event of an aggregate first skip
        # the older ones as stale (their reactions lost). A running service may have sends in
        # flight, which its Kafka client delivers to the new broker first; a new process checks
        # the broker before its first send. What they accepted is in their databases. They
        # start again once the new broker has its topics (a client of theirs reaching it first
        # would have it create a topic by itself, with 4 partitions).
        _stop([s.process for s in owners if s.process is not None], grace_s=5)
        stopped_at = time.monotonic()
        try:
            broker.start()
            asyncio.run(_create_topics(platform))
        except (RuntimeError, StartupError) as exc:
            typer.echo(f"error: the embedded broker did not start again: {exc}", err=True)
        for s in owners:
            # Once what they acknowledged last is settled enough for the relay's history check.
            s.restart_at = stopped_at + SETTLE_S
    for process in supervised:
        code = process.exited()
        if code is None:
            if now - process.started_at > HEALTHY_AFTER_S:
                process.backoff_s = 1.0
            continue
        if process.restart_at is None:
            if now - process.started_at > HEALTHY_AFTER_S:
                process.backoff_s = 1.0
            process.restart_at = now + process.backoff_s
            typer.echo(f"{process.name} exited with {code}; restarting it in "
                       f"{process.backoff_s:.0f}s", err=True)
            process.backoff_s = min(process.backoff_s * 2, MAX_BACKOFF_S)
        elif now >= process.restart_at:
            process.restarts += 1
            process.start()
            typer.echo(f"{process.name} restarted (restart {process.restarts})", err=True)
    return broker


async def _create_topics(platform: PlatformSettings) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topics(platform, platform.all_topics())
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise StartupError(f"could not create topics: {exc}") from exc
            await asyncio.sleep(0.5)


def _wait_ready(services: dict[str, int], supervised: list[Supervised]) -> None:
    deadline = time.monotonic() + 60
    pending = dict(services)
    while pending:
        for process in supervised:
            if process.exited() is not None:
                raise StartupError(f"{process.name} exited while starting (see above)")
        for name, port in list(pending.items()):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise StartupError(f"not ready in 60s: {', '.join(pending)}")
        time.sleep(0.2)
