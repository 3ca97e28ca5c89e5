"""The incidents service app: ``uvicorn incidents.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from incidents.config import IncidentsSettings
from incidents.consumers import reactions
from incidents.ingest import router as ingest_router
from incidents.routes import metrics_router, policy_router, router
from incidents.sla import sla_check_job
from tandem.app import Reaction, ServiceSpec, create_service_app
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: IncidentsSettings | None = None) -> FastAPI:
    platform = platform or PlatformSettings()
    settings = settings or IncidentsSettings()
    spec = ServiceSpec(
        name="incidents",
        title="Tandem incidents",
        description="ITIL incident management, fed by people, monitors and deployments.",
        database_url=settings.resolved_database_url(platform),
        routers=[router, policy_router, metrics_router, ingest_router],
        reactions=[Reaction(topics=["deployments", "changes"],
                            handlers=reactions(platform, settings))],
        jobs=[sla_check_job(settings)],
    )
    app = create_service_app(spec, platform)
    app.state.incidents_settings = settings
    return app
