"""``python -m bench storm --profile``: the create path in-process under cProfile (no uvicorn,
no load generator in the way), its own CPU time by package and the top functions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from bench.storm import deployment_body
from tandem.auth import Role, mint_token
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port


def profile_in_process(work: Path, env: dict[str, str]) -> None:
    """Profile the create path on a fresh database and broker of its own."""
    os.environ.update({k: v for k, v in env.items()
                       if k.startswith("TANDEM_") and k != "TANDEM_KAFKA_BOOTSTRAP"})
    os.environ["TANDEM_DEPLOYMENTS_DATABASE_URL"] = f"sqlite+aiosqlite:///{work / 'p.db'}"
    subprocess.run([sys.executable, "-m", "deployments", "migrate"], env=os.environ, check=True,
                   capture_output=True)
    pbroker = EmbeddedBroker(free_port(), log_path=work / "broker-profile.log")
    pbroker.start()
    os.environ["TANDEM_KAFKA_BOOTSTRAP"] = pbroker.bootstrap
    try:
        asyncio.run(profile_create())
    finally:
        pbroker.stop()


async def profile_create(n: int = 400) -> None:
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
            await client.post("/api/v1/deployments", json=deployment_body(),
                              headers={**headers, "Idempotency-Key": f"warm-{i}"})
        profiler = cProfile.Profile()
        profiler.enable()
        for i in range(n):
            await client.post("/api/v1/deployments", json=deployment_body(),
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
    if os.environ.get("BENCH_PROFILE_CALLERS"):
        stats.print_callers(os.environ["BENCH_PROFILE_CALLERS"])
    if os.environ.get("BENCH_PROFILE_CUMULATIVE"):
        stats.sort_stats("cumtime").print_stats("deployments|tandem", 40)


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
