"""The notifier service app: ``uvicorn notifier.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from notifier.config import NotifierSettings
from notifier.consumers import REACTIONS
from notifier.courier import Courier
from notifier.routes import deliveries_router, subscriptions_router
from tandem.app import ServiceSpec, create_service_app
from tandem.events import CloudEvent
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: NotifierSettings | None = None) -> FastAPI:
    """The notifier app under ``platform`` (default: from the environment) and ``settings``."""
    settings = settings or NotifierSettings()
    courier = Courier(settings)

    def event_applied(_: FastAPI, event: CloudEvent) -> None:
        courier.wake()  # its deliveries are committed: send them now, not at the next poll

    spec = ServiceSpec(
        title="Tandem notifier",
        description="Tells the tools people live in: signed webhooks (Standard Webhooks) and "
                    "Slack messages for every fact, filtered by type, service, team and "
                    "priority, with a delivery log and redelivery.",
        settings=settings,
        routers=[subscriptions_router, deliveries_router],
        reactions=[REACTIONS],
        jobs=[courier.run],
        on_event_applied=event_applied,
    )
    app = create_service_app(spec, platform)
    app.state.courier = courier
    return app
