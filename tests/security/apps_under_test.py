"""Every Tandem service app, running in-process on the real broker, for the security and fuzz
suites: one module-scoped instance per service, each with its own topics, database and secret.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from tandem.auth import Role, mint_token
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import drop_pg_database, isolated_platform, new_database_url, running_service

#: The services with a database of their own (the dashboard keeps none).
STORED = ("incidents", "changes", "deployments", "catalog", "notifier")
ALL = (*STORED, "dashboard")
#: The PagerDuty-style ingest's routing key configured for the incidents app under test.
ROUTING_KEY = "5ecu7e000000000000000000000000aa"


@dataclass
class Running:
    name: str
    app: FastAPI
    client: httpx.AsyncClient
    platform: PlatformSettings

    def token(self, role: Role | str, sub: str | None = None, *,
              ttl: timedelta = timedelta(hours=1)) -> str:
        return mint_token(self.platform.jwt_secret, sub=sub or f"{role}-user", role=role, ttl=ttl)

    def headers(self, role: Role | str, sub: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub)}"}


def platform_for(broker: EmbeddedBroker, var_dir: Path, **overrides: object) -> PlatformSettings:
    return isolated_platform(broker.bootstrap, var_dir, **overrides)


def build_app(name: str, platform: PlatformSettings, database_url: str | None) -> FastAPI:
    """``create_app`` of service ``name`` with its settings class, migrations applied."""
    main = importlib.import_module(f"{name}.main")
    config = importlib.import_module(f"{name}.config")
    if name == "dashboard":
        return main.create_app(platform, config.DashboardSettings())  # type: ignore[no-any-return]
    assert database_url is not None
    upgrade(config.MIGRATIONS_DIR, database_url)
    settings_class = {"incidents": "IncidentsSettings", "changes": "ChangesSettings",
                      "deployments": "DeploymentsSettings", "catalog": "CatalogSettings",
                      "notifier": "NotifierSettings"}[name]
    extra: dict[str, object] = {}
    if name == "incidents":
        extra["routing_keys"] = f"{ROUTING_KEY}=checkout"
    settings = getattr(config, settings_class)(database_url=database_url, **extra)
    return main.create_app(platform, settings)  # type: ignore[no-any-return]


@asynccontextmanager
async def running(name: str, broker: EmbeddedBroker, var_dir: Path, backend: str = "sqlite",
                  platform: PlatformSettings | None = None,
                  **platform_overrides: object) -> AsyncIterator[Running]:
    """Service ``name`` with its lifespan running on a fresh database of ``backend``; pass
    ``platform`` to run several services on the same topics."""
    platform = platform or platform_for(broker, var_dir, **platform_overrides)
    async with AsyncExitStack() as stack:
        url: str | None = None
        if name != "dashboard":
            url, db_name = await new_database_url(backend, var_dir, name)
            if db_name is not None:
                stack.push_async_callback(drop_pg_database, db_name)
        app = build_app(name, platform, url)
        client = await stack.enter_async_context(running_service(app))
        yield Running(name, app, client, platform)
