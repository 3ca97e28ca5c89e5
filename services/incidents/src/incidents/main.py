"""The incidents service app: ``uvicorn incidents.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from incidents.config import IncidentsSettings
from incidents.consumers import REACTIONS
from incidents.history import router as history_router
from incidents.ingest import router as ingest_router
from incidents.monitor_events import monitor_applier_job
from incidents.review_routes import review_metrics_router, review_router
from incidents.reviews import review_check_job
from incidents.routes import metrics_router, policy_router, router
from incidents.sla import sla_check_job
from tandem.app import ServiceSpec, create_service_app
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: IncidentsSettings | None = None) -> FastAPI:
    """The incidents app under ``platform`` (default: from the environment) and ``settings``."""
    spec = ServiceSpec(
        title="Tandem incidents",
        description="ITIL incident management, fed by people, monitors and deployments.",
        settings=settings or IncidentsSettings(),
        routers=[router, history_router, policy_router, metrics_router, ingest_router,
                 review_router, review_metrics_router],
        reactions=[REACTIONS],
        jobs=[sla_check_job, review_check_job, monitor_applier_job],
    )
    return create_service_app(spec, platform)
