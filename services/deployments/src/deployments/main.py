"""The deployments service app: ``uvicorn deployments.main:create_app --factory``."""

from __future__ import annotations

from fastapi import FastAPI

from deployments import change_events, history, webhooks
from deployments.config import DeploymentsSettings
from deployments.consumers import REACTIONS
from deployments.gate_polls import GateSignals, wake_gate_readers
from deployments.routes import dora_router, router
from tandem.app import ServiceSpec, create_service_app
from tandem.settings import PlatformSettings


def create_app(platform: PlatformSettings | None = None,
               settings: DeploymentsSettings | None = None) -> FastAPI:
    """The deployments app under ``platform`` (default: from the environment) and
    ``settings``."""
    spec = ServiceSpec(
        title="Tandem deployments",
        description="Deployment records for pipelines, the production gate, and live DORA.",
        settings=settings or DeploymentsSettings(),
        routers=[router, history.router, dora_router, webhooks.router, change_events.router],
        reactions=[REACTIONS],
        on_event_applied=wake_gate_readers,
    )
    app = create_service_app(spec, platform)
    app.state.gate_signals = GateSignals()
    return app
