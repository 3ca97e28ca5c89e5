"""The board page, its snapshot, the SSE stream, and health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dashboard.board import Board
from dashboard.config import DashboardSettings
from dashboard.feed import TopicFeed
from dashboard.sign_in import SESSION_COOKIE
from dashboard.stream import EventHub, StreamFilter
from dashboard.value_stream import as_json, as_svg, compute, parse_scope, parse_span
from tandem.auth import BEARER, Actor, bearer_token, verifier_of
from tandem.db import utcnow
from tandem.problems import Problem

STATIC_DIR = Path(__file__).parent / "static"

#: The page loads only its own files and talks only to this service.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def viewer(request: Request,
           _scheme: Annotated[object, Depends(BEARER)],
           access_token: Annotated[str | None, Query(
               description="The bearer token, for clients that cannot send headers "
                           "(a browser's EventSource).")] = None) -> Actor:
    """Any valid token (every role may read): a Bearer header, ``?access_token=``, or the
    session cookie of a person who signed in (:mod:`dashboard.sign_in`)."""
    token = bearer_token(request) or access_token or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Problem(401, "A bearer token is required (header, or ?access_token= for the page "
                           "and the stream).",
                      headers={"WWW-Authenticate": 'Bearer realm="tandem"'},
                      type_="urn:tandem:problem:unauthorized")
    return verifier_of(request).verify(token)


Viewer = Annotated[Actor, Depends(viewer)]

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["board"])


def _board(request: Request) -> Board:
    return request.app.state.board  # type: ignore[no-any-return]


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The board page; it carries no data, so it is served without a token."""
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_SECURITY_HEADERS)


@api.get("/board", summary="Everything the board shows, as of now")
async def board_snapshot(request: Request, _: Viewer) -> dict[str, Any]:
    """Open incidents with SLA due times, changes in flight, freezes, recent deployments,
    DORA per service with weekly trends, and the latest events; ``last_event_id`` is the
    stream position this snapshot includes (pass it to the stream as ``last_event_id``)."""
    return _board(request).snapshot()


@api.get("/stream", summary="Server-Sent Events: every event on the topics, live",
         response_class=StreamingResponse,
         responses={200: {"content": {"text/event-stream": {}},
                          "description": "SSE frames: `id: <topic>:<partition>:<offset>`, "
                                         "`data: <the CloudEvent as JSON>`."}})
async def stream(
    request: Request,
    _: Viewer,
    types: Annotated[str | None, Query(
        description="Comma-separated event types; `tandem.incident.*` matches a prefix.")] = None,
    service: Annotated[str | None, Query(
        description="Only events about this service (freezes covering it included).")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    resume_from: Annotated[str | None, Query(
        alias="last_event_id",
        description="Resume after this id when the Last-Event-ID header cannot be sent; "
                    "the header wins when both are given.")] = None,
) -> StreamingResponse:
    """Events after ``Last-Event-ID`` (from the recent ring), then live ones, filtered."""
    settings: DashboardSettings = request.app.state.settings
    hub: EventHub = request.app.state.hub
    sub = hub.subscribe(StreamFilter.parse(types, service), last_event_id or resume_from)
    return StreamingResponse(
        hub.frames(sub, keepalive_s=settings.keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/value-stream", include_in_schema=False)
async def value_stream_page() -> FileResponse:
    """The value stream map page; it carries no data, so it is served without a token."""
    return FileResponse(STATIC_DIR / "value-stream.html", headers=PAGE_SECURITY_HEADERS)


ScopeService = Annotated[str | None, Query(
    description="The stream of one service (its catalog name).")]
ScopeTeam = Annotated[str | None, Query(
    description="The stream of every service the team owns or runs.")]
ScopeSystem = Annotated[str | None, Query(
    description="The stream of every service of the catalog's system.")]
Window = Annotated[str | None, Query(
    max_length=16, description="How far back: `30d`, `12h`, `4w` (default the setting, 30d).")]


_UNKNOWN_SCOPE = {404: {"description": "The catalog has no team or system of that name."}}


@api.get("/value-stream", summary="The value stream of a service, a team or a system",
         responses=_UNKNOWN_SCOPE)
async def value_stream(request: Request, _: Viewer, service: ScopeService = None,
                       team: ScopeTeam = None, system: ScopeSystem = None,
                       window: Window = None) -> dict[str, Any]:
    """Stages commit → change requested → change authorized → deploy started → deployed, and
    for failures incident opened → acknowledged → mitigated → resolved → review done: each
    with p50 and p90, wait and work (seconds, summed over the items), the team holding it;
    the flow efficiency and the costliest stage. Exactly one of service, team, system."""
    settings: DashboardSettings = request.app.state.settings
    scope = parse_scope(service, team, system)
    window = window or settings.value_stream_window
    span, now = parse_span(window), utcnow()
    names, stream = compute(_board(request), scope, span, now)
    return as_json(scope, window, names, stream, now, span)


@api.get("/value-stream.svg", summary="The value stream map as SVG",
         response_class=Response,
         responses={200: {"content": {"image/svg+xml": {}}}, **_UNKNOWN_SCOPE})
async def value_stream_svg(request: Request, _: Viewer, service: ScopeService = None,
                           team: ScopeTeam = None, system: ScopeSystem = None,
                           window: Window = None,
                           download: Annotated[bool, Query(
                               description="Answer as a file to save.")] = False) -> Response:
    """The map drawn by the server: stage boxes with their times, the waits as a timeline
    under them; paste it into a review."""
    settings: DashboardSettings = request.app.state.settings
    scope = parse_scope(service, team, system)
    window = window or settings.value_stream_window
    span, now = parse_span(window), utcnow()
    _, stream = compute(_board(request), scope, span, now)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'"}
    if download:
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in scope.name)
        headers["Content-Disposition"] = (
            f'attachment; filename="value-stream-{scope.kind}-{safe}.svg"')
    return Response(as_svg(scope, window, stream), media_type="image/svg+xml",
                    headers=headers)


@router.get("/livez", include_in_schema=False)
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz(request: Request) -> JSONResponse:
    """Ready as soon as it serves: the board has no database; the broker is reported only."""
    feed: TopicFeed = request.app.state.feed
    board = _board(request)
    return JSONResponse({"status": "ok", "database": "n/a",
                         "broker": "connected" if feed.connected.is_set() else "connecting",
                         "caught_up": board.caught_up, "events_applied": board.events_applied})


@router.get("/metrics", include_in_schema=False)
async def metrics_text() -> PlainTextResponse:
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)
