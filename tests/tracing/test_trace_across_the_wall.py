"""One trace from a pipeline's request to the incident it caused in another service: the
``traceparent`` rides in the deployment's event, the incidents consumer continues it, and the
incident's own event carries it on (contract section 10). Spans go to an in-memory exporter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deployments.config import MIGRATIONS_DIR as DEPLOYMENTS_MIGRATIONS
from deployments.config import DeploymentsSettings
from deployments.main import create_app as create_deployments
from incidents.config import MIGRATIONS_DIR as INCIDENTS_MIGRATIONS
from incidents.config import IncidentsSettings
from incidents.main import create_app as create_incidents
from tandem import tracing
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers, eventually, running_service

TRACE_ID = uuid.uuid4().hex
INCOMING = f"00-{TRACE_ID}-{uuid.uuid4().hex[:16]}-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.enable(SimpleSpanProcessor(exporter), service="tandem-tests")
    try:
        yield exporter
    finally:
        tracing.disable()


async def test_a_failed_deploy_and_its_incident_are_one_trace(
        platform: PlatformSettings, tmp_path, spans: InMemorySpanExporter) -> None:
    deployments_db = f"sqlite+aiosqlite:///{tmp_path / 'deployments.db'}"
    incidents_db = f"sqlite+aiosqlite:///{tmp_path / 'incidents.db'}"
    upgrade(DEPLOYMENTS_MIGRATIONS, deployments_db)
    upgrade(INCIDENTS_MIGRATIONS, incidents_db)
    deployments = create_deployments(platform, DeploymentsSettings(database_url=deployments_db))
    incidents = create_incidents(platform, IncidentsSettings(database_url=incidents_db))
    pipeline = {**auth_headers(platform, "pipeline"), "traceparent": INCOMING}
    async with running_service(deployments) as dep_client, \
            running_service(incidents) as inc_client, \
            TopicWatcher(platform, platform.topic("incidents")) as watcher:
        await eventually(lambda: all(c.started.is_set()
                                     for c in incidents.state.runtime.consumers), timeout=30)
        created = await dep_client.post("/api/v1/deployments", headers=pipeline, json={
            "service": "traced", "environment": "production", "version": "9.9.9"})
        assert created.status_code == 201, created.text
        ref = created.json()["id"]
        for to in ("in_progress", "failed"):
            moved = await dep_client.post(f"/api/v1/deployments/{ref}/transitions",
                                          json={"to": to}, headers=pipeline)
            assert moved.status_code == 200, moved.text
        events = await watcher.wait_for(
            lambda evs: any(e.type == "tandem.incident.created" for e in evs), timeout=30)
        incident_created = next(e for e in events if e.type == "tandem.incident.created")
        # The incident, opened by another service's consumer, belongs to the request's trace.
        assert incident_created.traceparent is not None
        assert incident_created.traceparent.split("-")[1] == TRACE_ID
        listed = await inc_client.get("/api/v1/incidents?service=traced",
                                      headers=auth_headers(platform, "viewer"))
        assert listed.json()["items"][0]["cause_deployment_id"] == ref
    in_trace = [s for s in spans.get_finished_spans()
                if format(s.context.trace_id, "032x") == TRACE_ID]
    names = {s.name for s in in_trace}
    # The pipeline's request in deployments, the reaction in incidents, its SQL, one trace.
    assert any(n.startswith("POST /api/v1/deployments") for n in names), names
    reaction = [s for s in in_trace if s.name == "apply tandem.deployment.transitioned"
                and s.attributes.get("tandem.consumer") == "incidents-reactions"]
    assert reaction, names
    assert any(s.parent is not None and s.parent.span_id == reaction[0].context.span_id
               for s in in_trace), "the reaction's own work is not in its span"
