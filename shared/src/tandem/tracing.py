"""Tracing across the wall: one W3C trace from a request through every event it causes and every
reaction to those events, in every service (contract section 10).

Propagation always runs and costs a context variable: the ``traceparent`` of an incoming
request (or of the event a consumer applies) is the one every event written meanwhile carries
(``Aggregate.record``). Spans are recorded only when tracing is on: when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP over HTTP, as OpenTelemetry's own variables
configure it) or a test installs its own provider with :func:`enable`. Then FastAPI, SQLAlchemy
and aiokafka are instrumented, each consumed event is a span in the trace of the request that
caused it, and ``traceparent`` names that span's parent.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

#: The trace the code running now belongs to (a request's, or a consumed event's).
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None)

_propagator = TraceContextTextMapPropagator()
_state: dict[str, Any] = {"on": False, "instrumented": set()}


def enabled() -> bool:
    return bool(_state["on"])


def enable(processor: SpanProcessor | None = None, *, service: str = "tandem") -> TracerProvider:
    """Record spans from now on, sent to ``processor`` (default: OTLP over HTTP)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(provider)
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processor = BatchSpanProcessor(OTLPSpanExporter())
    provider.add_span_processor(processor)
    _state["on"] = True
    return provider


def disable() -> None:
    """Stop recording spans and take aiokafka's instrumentation off (tests that enabled it)."""
    if "aiokafka" in _state["instrumented"]:
        from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor

        AIOKafkaInstrumentor().uninstrument()
    for tracer in _state.pop("engines", []):
        tracer.remove_all_event_listeners()
    _state["instrumented"].clear()
    _state["on"] = False


def configure(service: str) -> None:
    """Turn tracing on for this process when OpenTelemetry's exporter is configured."""
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not enabled():
        enable(service=f"tandem-{service}")


def instrument_app(app: Any) -> None:
    """Instrument a service's app (before it starts) and aiokafka (once per process)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="livez,readyz,metrics")
    if "aiokafka" not in _state["instrumented"]:
        AIOKafkaInstrumentor().instrument()
        _state["instrumented"].add("aiokafka")


def instrument_engine(engine: Any) -> None:
    """Trace a service's database statements (each engine: a test process has several)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentor's public call takes one engine per process; its per-engine step is
    # what a process with several needs. Its declared range stops below SQLAlchemy 2.1, whose
    # engine events it uses unchanged.
    _state.setdefault("engines", []).append(
        SQLAlchemyInstrumentor()._instrument(engine=engine.sync_engine))


def current_traceparent() -> str | None:
    """The ``traceparent`` an event written now carries: the active span's when spans are
    recorded, else the one the request or consumed event brought."""
    if enabled():
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            carrier: dict[str, str] = {}
            _propagator.inject(carrier)
            return carrier.get("traceparent")
    return traceparent_var.get()


def valid(traceparent: str | None) -> str | None:
    """``traceparent`` when it is a W3C trace parent (an invalid one is ignored, as W3C asks)."""
    if traceparent and TRACEPARENT.match(traceparent) and not traceparent.startswith("ff"):
        return traceparent
    return None


@contextlib.contextmanager
def continuing(traceparent: str | None, name: str, **attributes: Any) -> Iterator[None]:
    """Run the block in the trace ``traceparent`` names: the events it writes carry it, and a
    span ``name`` is recorded as its child when tracing is on."""
    traceparent = valid(traceparent)
    token = traceparent_var.set(traceparent)
    try:
        if not enabled():
            yield
            return
        parent = _propagator.extract({"traceparent": traceparent} if traceparent else {})
        attach = otel_context.attach(parent)
        try:
            tracer = trace.get_tracer("tandem")
            with tracer.start_as_current_span(name, kind=trace.SpanKind.CONSUMER,
                                              attributes=attributes):
                yield
        finally:
            otel_context.detach(attach)
    finally:
        traceparent_var.reset(token)
