"""``tandem dev``: the whole embedded stack in one command, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import typer

from tandem.auth import Role, mint_token
from tandem_cli.broker import EmbeddedBroker
from tandem.kafka import ensure_topics
from tandem.settings import SERVICES, PlatformSettings


def _die_with_parent() -> None:
    # The services end with tandem dev even if it is killed outright (PR_SET_PDEATHSIG).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass


def _installed(service: str) -> bool:
    return importlib.util.find_spec(service) is not None


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def dev() -> None:
    platform = PlatformSettings()
    platform.var_dir.mkdir(parents=True, exist_ok=True)
    secret = platform.jwt_secret
    services = {name: port for name, port in SERVICES.items() if _installed(name)}
    broker: EmbeddedBroker | None = None
    processes: list[subprocess.Popen[bytes]] = []
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
        if "TANDEM_KAFKA_BOOTSTRAP" not in os.environ:
            broker = EmbeddedBroker(9092, log_path=platform.var_dir / "broker.log")
            broker.start()
            typer.echo(f"broker    embedded Tansu on {broker.bootstrap}")
        else:
            typer.echo(f"broker    {platform.kafka_bootstrap} (TANDEM_KAFKA_BOOTSTRAP)")
        asyncio.run(_create_topics(platform))
        migrations = [subprocess.Popen([sys.executable, "-m", name, "migrate"])
                      for name in services]
        if any(m.wait() != 0 for m in migrations):
            typer.echo("error: a migration failed (see above)", err=True)
            raise typer.Exit(1)
        env = {**os.environ, "TANDEM_AUTH_SECRET": secret}
        for name, port in services.items():
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", f"{name}.main:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
                 "--log-level", "warning"],
                env=env, preexec_fn=_die_with_parent, start_new_session=True,
            ))
        _wait_ready(services, processes)
        typer.echo(f"ready in {time.monotonic() - started:.1f}s")
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
        while True:
            for p in processes:
                if p.poll() is not None:
                    typer.echo(f"error: a service exited with {p.returncode}; stopping", err=True)
                    raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        typer.echo("stopping")
    finally:
        _stop(processes)
        if broker is not None:
            broker.stop()
        typer.echo("stopped")


async def _create_topics(platform: PlatformSettings) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await ensure_topics(platform, platform.all_topics())
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not create topics: {exc}") from exc
            await asyncio.sleep(0.5)


def _wait_ready(services: dict[str, int], processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60
    pending = dict(services)
    while pending:
        for p in processes:
            if p.poll() is not None:
                raise RuntimeError("a service exited while starting")
        for name, port in list(pending.items()):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    del pending[name]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready in 60s: {', '.join(pending)}")
        time.sleep(0.2)
