"""The changes service app: ``uvicorn changes.main:create_app --factory``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from changes import service
from changes.config import ChangesSettings
from changes.consumers import reactions
from changes.routes import routers
from changes.service import Context
from tandem.app import Reaction, ServiceRuntime, ServiceSpec, create_service_app
from tandem.settings import PlatformSettings

log = logging.getLogger("changes")


def freeze_clock(ctx: Context) -> Callable[[ServiceRuntime], Awaitable[None]]:
    """A job moving freezes scheduled -> active -> ended at their times, with events."""

    async def run(runtime: ServiceRuntime) -> None:
        while True:
            try:
                async with runtime.db.transaction() as session:
                    await service.advance_freezes(session, ctx)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("freeze clock failed, retrying: %s", exc)
            await asyncio.sleep(ctx.settings.freeze_clock_interval_s)

    return run


def create_app(platform: PlatformSettings | None = None,
               settings: ChangesSettings | None = None) -> FastAPI:
    platform = platform or PlatformSettings()
    settings = settings or ChangesSettings()
    ctx = Context(platform, settings)
    spec = ServiceSpec(
        name="changes",
        title="Tandem changes",
        description="ITIL change enablement: approvals, risk, schedules, freezes and conflicts, "
                    "fed by deployments and incidents.",
        database_url=settings.resolved_database_url(platform),
        routers=routers,
        reactions=[Reaction(topics=["incidents", "deployments"], handlers=reactions(ctx))],
        jobs=[freeze_clock(ctx)],
    )
    app = create_service_app(spec, platform)
    app.state.changes_context = ctx
    return app
