"""The baseline: bare FastAPI endpoints that only validate the bodies the storm benchmark sends
(a deployment create, a monitor event)."""

from __future__ import annotations

from fastapi import FastAPI

from deployments.models import DeploymentCreate
from incidents.ingest import MonitorEvent


def create_app() -> FastAPI:
    app = FastAPI(title="bare baseline")

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/deployments", status_code=201)
    async def create(body: DeploymentCreate) -> dict[str, str]:
        return {"service": body.service, "software_version": body.software_version}

    @app.post("/v2/enqueue", status_code=202)
    async def enqueue(event: MonitorEvent) -> dict[str, str | None]:
        return {"status": "success", "message": "Event processed", "dedup_key": event.dedup_key}

    return app
