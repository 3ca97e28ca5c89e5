"""Server-Sent Events: a bounded ring of recent events and a bounded queue per client.

Each event's SSE ``id`` is ``<topic>:<partition>:<offset>``. A client that reconnects with
``Last-Event-ID`` gets the ring's events after that id, then live ones. A client whose queue
fills (it reads slower than events arrive) is dropped rather than holding others up; its
browser reconnects with ``Last-Event-ID`` and catches up from the ring.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

log = logging.getLogger("dashboard.stream")

SSE_CLIENTS = Gauge("tandem_dashboard_sse_clients", "Connected SSE clients")
SSE_DROPPED = Counter("tandem_dashboard_sse_dropped_total", "SSE clients dropped for being slow")


@dataclass(frozen=True)
class StreamEvent:
    """One event as the stream sends it: its position id, type, services and JSON text."""

    id: str
    type: str
    services: frozenset[str]
    json: str

    def frame(self) -> str:
        return f"id: {self.id}\ndata: {self.json}\n\n"


@dataclass(frozen=True)
class StreamFilter:
    """``?types=`` (exact types, or ``tandem.incident.*`` prefixes) and ``?service=``."""

    types: frozenset[str] = frozenset()
    service: str | None = None

    @classmethod
    def parse(cls, types: str | None, service: str | None) -> StreamFilter:
        wanted = frozenset(t.strip() for t in (types or "").split(",") if t.strip())
        return cls(wanted, service.strip() or None if service else None)

    def matches(self, event: StreamEvent) -> bool:
        if self.types and event.type not in self.types and not any(
                t.endswith(".*") and event.type.startswith(t[:-1]) for t in self.types):
            return False
        return self.service is None or bool({self.service, "*"} & event.services)


@dataclass(eq=False)
class Subscriber:
    filter: StreamFilter
    queue: asyncio.Queue[StreamEvent | None]
    backlog: list[StreamEvent] = field(default_factory=list)
    dropped: bool = False


class EventHub:
    """Fans events out to SSE clients; remembers the last ``ring_size`` for resumption."""

    def __init__(self, *, ring_size: int, client_queue_size: int) -> None:
        self.ring: deque[StreamEvent] = deque(maxlen=ring_size)
        self.client_queue_size = client_queue_size
        self.subscribers: set[Subscriber] = set()

    def publish(self, event: StreamEvent) -> None:
        """Remember ``event`` and hand it to every matching client without waiting on any."""
        self.ring.append(event)
        for sub in list(self.subscribers):
            if sub.dropped or not sub.filter.matches(event):
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.drop(sub)

    def drop(self, sub: Subscriber) -> None:
        """End a slow client's stream; it resumes from its last id when it reconnects."""
        _end(sub)
        # Forget it now: a stream that never started would otherwise never unsubscribe.
        self.unsubscribe(sub)
        SSE_DROPPED.inc()
        log.info("dropped a slow SSE client (queue of %d full)", self.client_queue_size)

    def after(self, last_event_id: str | None) -> list[StreamEvent]:
        """The ring's events after ``last_event_id``: all of them when it is no longer known."""
        if not last_event_id:
            return []
        ids = [e.id for e in self.ring]
        try:
            index = ids.index(last_event_id)
        except ValueError:
            return list(self.ring)
        return list(self.ring)[index + 1:]

    def subscribe(self, stream_filter: StreamFilter, last_event_id: str | None) -> Subscriber:
        """Register a client; its backlog and live queue meet with no gap and no overlap."""
        # No await between reading the ring and registering: nothing can slip in between.
        backlog = [e for e in self.after(last_event_id) if stream_filter.matches(e)]
        sub = Subscriber(stream_filter, asyncio.Queue(self.client_queue_size), backlog)
        self.subscribers.add(sub)
        SSE_CLIENTS.set(len(self.subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)
        SSE_CLIENTS.set(len(self.subscribers))

    async def frames(self, sub: Subscriber, *, keepalive_s: float,
                     retry_ms: int = 2000) -> AsyncIterator[str]:
        """The text of one client's SSE response: retry hint, backlog, then live events."""
        try:
            yield f"retry: {retry_ms}\n: tandem event stream\n\n"
            backlog, sub.backlog = sub.backlog, []
            for event in backlog:
                yield event.frame()
            while True:
                try:
                    async with asyncio.timeout(keepalive_s):
                        item = await sub.queue.get()
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                yield item.frame()
        finally:
            self.unsubscribe(sub)

    def end_all(self) -> None:
        """End every open stream (on shutdown)."""
        for sub in list(self.subscribers):
            _end(sub)
            self.unsubscribe(sub)


def _end(sub: Subscriber) -> None:
    """Replace whatever the client has queued with the end-of-stream marker."""
    sub.dropped = True
    while not sub.queue.empty():
        sub.queue.get_nowait()
    sub.queue.put_nowait(None)
