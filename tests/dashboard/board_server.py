"""The dashboard served by a real HTTP server in the test's event loop (SSE and the browser
need a socket; an in-process ASGI client buffers whole responses)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from dashboard.config import DashboardSettings
from dashboard.main import create_app
from tandem.settings import PlatformSettings
from tandem_cli.broker import free_port


@dataclass
class RunningDashboard:
    app: FastAPI
    url: str
    token: str
    client: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def serve_dashboard(platform: PlatformSettings, settings: DashboardSettings | None = None,
                          port: int | None = None,
                          ) -> tuple[FastAPI, uvicorn.Server, asyncio.Task[None], str]:
    """The dashboard on ``port`` (else a free one); stop it with :func:`stop_dashboard`."""
    app = create_app(platform, settings or DashboardSettings())
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="none", lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("the dashboard did not start")
        await asyncio.sleep(0.02)
    return app, server, task, f"http://127.0.0.1:{port}"


async def stop_dashboard(app: FastAPI, server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    app.state.hub.end_all()  # open streams would otherwise hold the server's shutdown
    server.should_exit = True
    await asyncio.wait_for(task, 15)
