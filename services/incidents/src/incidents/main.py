"""The incidents service app: ``uvicorn incidents.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI
from tandem.app import Reaction, ServiceSpec, create_service_app
from tandem.settings import PlatformSettings

from incidents.config import IncidentsSettings
from incidents.consumers import reactions
from incidents.routes import router


def create_app(platform: PlatformSettings | None = None,
               settings: IncidentsSettings | None = None) -> FastAPI:
    platform = platform or PlatformSettings()
    settings = settings or IncidentsSettings()
    spec = ServiceSpec(
        name="incidents",
        title="Tandem incidents",
        description="ITIL incident management, fed by monitors and deployments.",
        database_url=settings.resolved_database_url(platform),
        routers=[router],
        reactions=[Reaction(topics=["deployments"], handlers=reactions(platform))],  # type: ignore[arg-type]
    )
    return create_service_app(spec, platform)
