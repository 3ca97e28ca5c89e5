"""The dashboard app: ``uvicorn dashboard.main:create_app --factory``.

The dashboard keeps no database, so it does not use the outbox/consumer machinery of
``create_service_app``; it shares the request layer, problems, logs and metrics instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from dashboard import sign_in
from dashboard.board import Board
from dashboard.config import DashboardSettings
from dashboard.feed import TopicFeed
from dashboard.routes import STATIC_DIR, api, router
from dashboard.stream import EventHub
from tandem.api_docs import serve_api_docs
from tandem.app import RequestContext
from tandem.auth import TokenVerifier
from tandem.inputs import InputGuard
from tandem.logs import configure_logging
from tandem.problems import install_problem_handlers
from tandem.settings import PlatformSettings

log = logging.getLogger("dashboard")


def _end_streams_on_signal(hub: EventHub) -> Callable[[], None]:
    """End open SSE streams when the server is told to stop, then let it stop.

    A server waits for open responses before shutting down, and a stream never ends by
    itself; browsers reconnect to the next process with Last-Event-ID.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.end_all)
        before = previous[signal.Signals(sig)]
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL:
            signal.default_int_handler(sig, frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before)

    return restore


def create_app(platform: PlatformSettings | None = None,
               settings: DashboardSettings | None = None) -> FastAPI:
    platform = platform or PlatformSettings()
    settings = settings or DashboardSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging("dashboard", platform.log_level)
        board = Board(settings)
        hub = EventHub(ring_size=settings.ring_size,
                       client_queue_size=settings.client_queue_size)
        verifier = TokenVerifier.from_settings(platform)
        feed = TopicFeed(platform, board, hub, verifier.revoked)
        app.state.settings = settings
        app.state.board = board
        app.state.hub = hub
        app.state.feed = feed
        app.state.verifier = verifier
        task = asyncio.create_task(feed.run(), name="dashboard-feed")
        restore_signals = _end_streams_on_signal(hub)
        log.info("dashboard started")
        try:
            yield
        finally:
            restore_signals()
            hub.end_all()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            log.info("dashboard stopped")

    app = FastAPI(title="Tandem dashboard", version="1.0.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="A live board of incidents, changes, deployments and DORA, "
                              "fed by Tandem's topics, and the topics as Server-Sent Events.")
    serve_api_docs(app)
    install_problem_handlers(app)
    app.include_router(router)
    app.include_router(api)
    app.include_router(sign_in.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(InputGuard)
    app.add_middleware(RequestContext, service="dashboard",
                       max_body_bytes=platform.max_body_bytes)
    return app
