"""The service application factory: health, metrics, errors, logs, the relay and consumers.

Every service builds its FastAPI app with :func:`create_service_app` from a :class:`ServiceSpec`;
the lifespan starts the outbox relay, the consumers and any background jobs, all of which
connect to the broker in the background, so the service serves HTTP with no broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem import dead_letters, history, identity, metrics, revocations, tracing
from tandem.api_docs import serve_api_docs
from tandem.auth import TokenVerifier
from tandem.consumer import EventConsumer, Handler
from tandem.db import Database
from tandem.dead_letters import count_open
from tandem.events import CloudEvent
from tandem.inputs import InputGuard
from tandem.kafka import KafkaLink, ensure_topics_with_retry
from tandem.logs import configure_logging, request_id_var
from tandem.outbox import OutboxRelay
from tandem.problems import Problem, install_problem_handlers, problem_response
from tandem.revocations import REVOCATION_TOPIC, REVOKED
from tandem.settings import PlatformSettings, ServiceSettings

log = logging.getLogger("tandem.app")


#: A service's reaction to one event type: a named function in its ``consumers.py`` that
#: gets the consumer's session, the event and the service's own settings.
ReactionHandler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]


@dataclass
class Reaction:
    """A consumer of other services' topics (logical names such as ``deployments``), with its
    handlers by event type."""

    topics: list[str]
    handlers: Mapping[str, ReactionHandler]
    name: str = "reactions"

    def bound(self, settings: ServiceSettings) -> dict[str, Handler]:
        """The handlers as the consumer loop calls them, each given ``settings``."""
        return {type_: functools.partial(handler, settings=settings)
                for type_, handler in self.handlers.items()}


@dataclass
class ServiceSpec:
    """What a service is made of; :func:`create_service_app` runs it."""

    title: str
    #: The service's own settings (its name and database among them).
    settings: ServiceSettings
    routers: list[APIRouter]
    reactions: list[Reaction] = field(default_factory=list)
    #: Long-running jobs (such as an SLA check), each given the running service.
    jobs: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)
    description: str = ""
    #: Called after a consumed event's transaction commits (to wake long-polls).
    on_event_applied: Callable[[FastAPI, CloudEvent], Any] | None = None

    @property
    def name(self) -> str:
        """The service's name (``incidents``): its topic, its database, its consumers."""
        return self.settings.service


@dataclass
class ServiceRuntime:
    spec: ServiceSpec
    platform: PlatformSettings
    db: Database
    kafka: KafkaLink
    relay: OutboxRelay
    consumers: list[EventConsumer]

    @property
    def topic(self) -> str:
        """The topic this service owns."""
        return self.platform.topic(self.spec.name)

    @property
    def settings(self) -> ServiceSettings:
        return self.spec.settings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    read_only = request.method in ("GET", "HEAD")
    async with request.app.state.db.transaction(read_only=read_only) as session:
        yield session


#: The request's session: committed once when the handler returns, rolled back on error.
Session = Annotated[AsyncSession, Depends(_session, scope="function")]


# ``async def``, as every per-request dependency: a plain ``def`` one runs on a worker thread.
async def runtime_of(request: Request) -> ServiceRuntime:
    return request.app.state.runtime  # type: ignore[no-any-return]


Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


async def service_settings(request: Request) -> Any:
    """The running service's own settings; each service names its type in one alias::

        Settings = Annotated[IncidentsSettings, Depends(service_settings)]
    """
    return request.app.state.runtime.spec.settings


class RequestContext:
    """Request ids, access logs, metrics and the body size limit, as one ASGI layer."""

    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.access = logging.getLogger("tandem.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex
        token = request_id_var.set(rid)
        trace_token = tracing.traceparent_var.set(
            tracing.valid(headers.get(b"traceparent", b"").decode("latin-1").strip().lower()))
        started = time.perf_counter()
        status = 500
        length = headers.get(b"content-length")
        over_limit = length is not None and length.isdigit() and int(length) > self.max_body_bytes
        answered = False
        received = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            # Once the body is known to be over the limit, the app's own answer is dropped.
            if over_limit and not answered:
                return
            if message["type"] == "http.response.start":
                answered = True
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received, over_limit
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    over_limit = True
                    raise _BodyTooLarge
            return message

        try:
            if not over_limit:
                with contextlib.suppress(_BodyTooLarge):
                    await self.app(scope, limited_receive, send_with_id)
            if over_limit and not answered:
                # Whatever the app made of a cut body (a parser's 400), the answer is 413.
                over_limit = False
                response = problem_response(
                    Problem(413, f"The request body is over {self.max_body_bytes} bytes.")
                )
                await response(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            metrics.HTTP_LATENCY.labels(self.service, scope["method"], route).observe(elapsed)
            if self.access.isEnabledFor(logging.INFO):
                self.access.info(
                    "%s %s %d %.1fms", scope["method"], scope["path"], status, elapsed * 1000
                )
            request_id_var.reset(token)
            tracing.traceparent_var.reset(trace_token)


async def _bounded(step: Awaitable[Any], seconds: float, what: str) -> None:
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown: %s took over %.0fs; going on without it", what, seconds)
    except Exception as exc:
        log.warning("shutdown: %s failed: %r", what, exc)


async def _drain(relay: OutboxRelay) -> None:
    """Relay what is left, batch by batch, until nothing is (bounded by the caller)."""
    while await relay.relay_once() >= relay.batch_size:
        pass


class _BodyTooLarge(Exception):
    pass


def _health_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        rt: ServiceRuntime = request.app.state.runtime
        db_ok = await rt.db.ping()
        body = {
            "status": "ok" if db_ok else "unavailable",
            "database": "ok" if db_ok else "unreachable",
            # Readiness needs the database only; the broker is reported, not required.
            "broker": "connected"
            if all(c.started.is_set() for c in rt.consumers) and rt.consumers
            else ("connecting" if rt.consumers else "n/a"),
        }
        return JSONResponse(body, status_code=200 if db_ok else 503)

    @router.get("/metrics")
    async def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(spec: ServiceSpec, platform: PlatformSettings | None = None) -> FastAPI:
    """Build a service's app; nothing connects until the lifespan starts."""
    platform = platform or PlatformSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, platform.log_level)
        db = Database(spec.settings.database_url_for(platform), topic=platform.topic(spec.name),
                      sqlite_inline=platform.sqlite_inline)
        tracing.instrument_engine(db.engine)
        kafka = KafkaLink(platform)
        relay = OutboxRelay(
            service=spec.name,
            db=db,
            kafka=kafka,
            topic=platform.topic(spec.name),
            retention=timedelta(days=platform.outbox_retention_days),
            history_check_interval_s=platform.history_check_interval_s,
            batch_size=platform.relay_batch_size,
            poll_interval_s=platform.relay_poll_interval_s,
        )
        verifier = TokenVerifier.from_settings(platform)
        remember = functools.partial(revocations.remember, verifier.revoked)
        # Every service honours revocations: the first reaction's consumer also takes them
        # (one consumer group, one fetch loop, fewer idle fetches); a service without
        # reactions has a consumer for them alone.
        reactions = spec.reactions or [Reaction(topics=[], handlers={}, name="revocations")]
        hook = spec.on_event_applied
        consumers = []
        for index, reaction in enumerate(reactions):
            handlers = reaction.bound(spec.settings)
            topics = list(reaction.topics)
            takes_revocations = index == 0
            if takes_revocations:
                handlers[REVOKED] = revocations.record_revocation
                if REVOCATION_TOPIC not in topics:
                    topics.append(REVOCATION_TOPIC)

            def after(event: CloudEvent, _revocations: bool = takes_revocations) -> Any:
                if _revocations and event.type == REVOKED:
                    remember(event)
                return hook(app, event) if hook is not None else None

            consumers.append(
                EventConsumer(
                    name=f"{spec.name}-{reaction.name}",
                    topics=[platform.topic(t) for t in topics],
                    handlers=handlers,
                    db=db,
                    kafka=kafka,
                    dlq_topic=platform.dlq_topic(spec.name),
                    group_id=platform.group_id(f"{spec.name}-{reaction.name}"),
                    max_attempts=platform.consumer_max_attempts,
                    after_commit=after,
                    # Only a topic's owner writes it; anything else on it is refused.
                    sources={platform.topic(t): f"/tandem/{t}" for t in topics},
                    max_sequence_gap=platform.consumer_max_sequence_gap,
                )
            )
        runtime = ServiceRuntime(spec, platform, db, kafka, relay, consumers)
        app.state.runtime = runtime
        app.state.db = db
        app.state.verifier = verifier

        needed = [platform.topic(spec.name), platform.dlq_topic(spec.name)]
        needed += [platform.topic(t) for r in spec.reactions for t in r.topics]
        needed.append(platform.topic(REVOCATION_TOPIC))
        topics_ready = asyncio.create_task(ensure_topics_with_retry(platform, needed))

        async def after_topics(run: Callable[[], Awaitable[None]]) -> None:
            await topics_ready
            await run()

        if consumers:
            with contextlib.suppress(Exception):  # the database may still be coming up
                await count_open(db, [c.name for c in consumers])
        tasks = [topics_ready, asyncio.create_task(relay.run(), name=f"{spec.name}-relay")]
        tasks += [asyncio.create_task(after_topics(c.run), name=c.name) for c in consumers]
        tasks += [asyncio.create_task(job(runtime)) for job in spec.jobs]
        tasks.append(asyncio.create_task(revocations.follow_revocations(
            db, verifier.revoked, platform.auth_revocation_refresh_s), name="revocations"))
        log.info("%s started", spec.name)
        try:
            yield
        finally:
            # Stop taking messages, drain the relay, then close the producer and the database.
            # Each step is bounded: a stuck client must not keep the process from ending (what
            # it had not done is in the database, and done after the next start).
            for task in tasks[2:]:
                task.cancel()
            await _bounded(asyncio.gather(*tasks[2:], return_exceptions=True), 15,
                           "stopping the consumers and jobs")
            relay.finish()  # after the batch in hand (cancelled, only if it takes over 5 s)
            await _bounded(asyncio.gather(tasks[1], return_exceptions=True), 5,
                           "stopping the relay")
            if topics_ready.done() and not topics_ready.cancelled():
                await _bounded(_drain(relay), 5, "draining the outbox")
            topics_ready.cancel()
            await _bounded(relay.stop(), 5, "releasing the relay's lock")
            await _bounded(kafka.close(), 10, "closing the Kafka clients")
            await _bounded(db.dispose(), 10, "closing the database")
            log.info("%s stopped", spec.name)

    app = FastAPI(
        title=spec.title, description=spec.description, version="1.0.0", lifespan=lifespan,
        docs_url=None, redoc_url=None,
    )
    serve_api_docs(app)
    tracing.configure(spec.name)
    tracing.instrument_app(app)
    install_problem_handlers(app)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", exc.orig)
        return problem_response(
            Problem(
                409,
                "The request conflicts with data written meanwhile "
                "(a concurrent or repeated request); retry it.",
                type_="urn:tandem:problem:conflict",
            )
        )

    @app.exception_handler(OperationalError)
    async def _database_unavailable(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("database unavailable: %s", exc.orig)
        return problem_response(
            Problem(503, "The database is unavailable or busy; retry shortly.",
                    type_="urn:tandem:problem:database-unavailable", headers={"Retry-After": "1"})
        )

    app.include_router(_health_router())
    for router in spec.routers:
        app.include_router(router)
    app.include_router(history.router)
    app.include_router(identity.router)
    if spec.reactions:
        app.include_router(dead_letters.router)
    app.add_middleware(InputGuard)
    app.add_middleware(RequestContext, service=spec.name, max_body_bytes=platform.max_body_bytes)
    return app
