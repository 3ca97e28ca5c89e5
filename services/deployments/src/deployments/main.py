"""The deployments service app: ``uvicorn deployments.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from deployments.config import DeploymentsSettings
from deployments.consumers import reactions
from deployments.routes import dora_router, router
from deployments.service import GateSignals
from tandem.app import Reaction, ServiceSpec, create_service_app
from tandem.events import CloudEvent
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: DeploymentsSettings | None = None) -> FastAPI:
    platform = platform or PlatformSettings()
    settings = settings or DeploymentsSettings()
    signals = GateSignals()

    def on_event_applied(_: FastAPI, event: CloudEvent) -> None:
        # After the consumer's commit: wake the long polls of the gates this event changed.
        signals.fire(event.id)

    spec = ServiceSpec(
        name="deployments",
        title="Tandem deployments",
        description="Deployment records for pipelines, the production gate, and live DORA.",
        database_url=settings.resolved_database_url(platform),
        routers=[router, dora_router],
        reactions=[Reaction(topics=["changes", "incidents"],
                            handlers=reactions(platform, settings, signals))],
        on_event_applied=on_event_applied,
    )
    app = create_service_app(spec, platform)
    app.state.deployments_settings = settings
    app.state.gate_signals = signals
    return app
