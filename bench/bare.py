"""The baseline: a bare FastAPI endpoint that only validates the deployment create body."""

from __future__ import annotations

from fastapi import FastAPI

from deployments.models import DeploymentCreate


def create_app() -> FastAPI:
    app = FastAPI(title="bare baseline")

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/deployments", status_code=201)
    async def create(body: DeploymentCreate) -> dict[str, str]:
        return {"service": body.service, "software_version": body.software_version}

    return app
