"""The catalog service app: ``uvicorn catalog.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from catalog.config import CatalogSettings
from catalog.consumers import REACTIONS
from catalog.routes import import_router, revocations_router, services_router, teams_router
from tandem.app import ServiceSpec, create_service_app
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: CatalogSettings | None = None) -> FastAPI:
    """The catalog app under ``platform`` (default: from the environment) and ``settings``."""
    spec = ServiceSpec(
        title="Tandem catalog",
        description="Who owns what: services, the teams that build and run them, Backstage "
                    "descriptor import; services first named elsewhere register by themselves.",
        settings=settings or CatalogSettings(),
        routers=[services_router, teams_router, import_router, revocations_router],
        reactions=[REACTIONS],
    )
    return create_service_app(spec, platform)
