"""The changes service app: ``uvicorn changes.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from changes import calendar, change_routes, freeze_routes, standard_change_routes
from changes.config import ChangesSettings
from changes.consumers import REACTIONS
from changes.freezes import freeze_clock
from tandem.app import ServiceSpec, create_service_app
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: ChangesSettings | None = None) -> FastAPI:
    spec = ServiceSpec(
        title="Tandem changes",
        description="ITIL change enablement: approvals (by ownership, from the catalog), risk, "
                    "schedules, freezes, conflicts and the standard change catalog, fed by "
                    "deployments, incidents and the catalog.",
        settings=settings or ChangesSettings(),
        routers=[change_routes.router, change_routes.scores_router, freeze_routes.router,
                 calendar.router, standard_change_routes.router],
        reactions=[REACTIONS],
        jobs=[freeze_clock],
    )
    return create_service_app(spec, platform)
