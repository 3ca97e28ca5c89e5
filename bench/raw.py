"""The second baseline: the deployment create endpoint writing the same rows as Tandem's with
the raw driver (``sqlite3`` on the event loop, hand-written SQL, ``orjson``), in one
transaction: the idempotency lookup, the number, the gate projections read, the deployment
row, its two outbox rows and the idempotency record; and the monitor event endpoint writing
its one ``monitor_event`` row. No relay or applier runs: it is the floor of the request's own
work. The databases are migrated ones (``BENCH_RAW_DEPLOYMENTS_DB``,
``BENCH_RAW_INCIDENTS_DB``)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Header
from fastapi.responses import Response

from deployments.models import DeploymentCreate
from incidents.ingest import MonitorEvent


def _now() -> str:
    return datetime.now(UTC).isoformat(sep=" ")


def create_app() -> FastAPI:
    app = FastAPI(title="raw driver baseline")
    conn = sqlite3.connect(os.environ["BENCH_RAW_DEPLOYMENTS_DB"], isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("INSERT OR IGNORE INTO number_sequence (prefix, last_value) VALUES ('DEP', 0)")

    incidents = sqlite3.connect(os.environ["BENCH_RAW_INCIDENTS_DB"], isolation_level=None,
                                check_same_thread=False)
    incidents.execute("PRAGMA journal_mode=WAL")
    incidents.execute("PRAGMA synchronous=NORMAL")

    @app.post("/v2/enqueue", status_code=202)
    async def enqueue(event: MonitorEvent) -> Response:
        dedup_key = event.dedup_key or uuid.uuid4().hex
        alert = event.payload.model_dump(by_alias=True, exclude_none=True) if event.payload \
            else None
        incidents.execute("BEGIN IMMEDIATE")
        try:
            incidents.execute(
                "INSERT INTO monitor_event (received_at, service, environment, action, "
                "dedup_key, actor, alert) VALUES (?, 'storm', 'production', ?, ?, ?, ?)",
                (_now(), event.event_action, dedup_key, f"monitor:{event.client}",
                 orjson.dumps(alert)))
            incidents.execute("COMMIT")
        except BaseException:
            incidents.execute("ROLLBACK")
            raise
        return Response(orjson.dumps({"status": "success", "message": "Event processed",
                                      "dedup_key": dedup_key}), status_code=202,
                        media_type="application/json")

    @app.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/deployments", status_code=201)
    async def create(body: DeploymentCreate,
                     idempotency_key: str = Header()) -> Response:
        actor = "bench-pipeline"
        now = _now()
        conn.execute("BEGIN IMMEDIATE")
        try:
            seen = conn.execute("SELECT status_code, response FROM idempotency_key "
                                "WHERE key = ? AND actor = ?", (idempotency_key, actor)).fetchone()
            if seen is not None:
                conn.execute("ROLLBACK")
                return Response(seen[1], status_code=seen[0], media_type="application/json")
            (number,) = conn.execute("UPDATE number_sequence SET last_value = last_value + 1 "
                                     "WHERE prefix = 'DEP' RETURNING last_value").fetchone()
            blockers = conn.execute(
                "SELECT count(*) FROM freeze_view WHERE status = 'active' UNION ALL "
                "SELECT count(*) FROM incident_view WHERE service = ? AND major = 1 "
                "AND status NOT IN ('resolved', 'closed', 'canceled')",
                (body.service,)).fetchall()
            decision = "allowed" if not any(b[0] for b in blockers) else "blocked"
            dep_id = uuid.uuid4().hex
            commits = [{"sha": c.sha, "committed_at": c.committed_at.isoformat()}
                       for c in body.commits]
            pipeline = body.pipeline.model_dump() if body.pipeline else None
            snapshot: dict[str, Any] = {
                "id": dep_id, "number": f"DEP{number:07d}", "service": body.service,
                "environment": body.environment.value,
                "software_version": body.software_version, "artifact": body.artifact,
                "ref": body.ref, "commits": commits, "pipeline": pipeline,
                "triggered_by": actor, "change_id": None, "status": "requested",
                "gate": {"decision": decision, "reasons": [], "change_id": None,
                         "mode": "receipt", "decided_at": now},
                "rework": False, "fixes": None, "recovery": None,
                "allowed_transitions": ["in_progress", "canceled"], "started_at": None,
                "finished_at": None, "version": 2, "created_at": now, "updated_at": now}
            conn.execute(
                "INSERT INTO deployment (id, number, service, environment, software_version, "
                "artifact, ref, commits, pipeline, triggered_by, change_id, status, "
                "gate_decision, gate_reasons, gate_change_id, gate_mode, gate_decided_at, "
                "gate_history, change_requested, rework, started_at, finished_at, version, "
                "created_at, updated_at, fixes, recovery, recovers_deployment_id, "
                "recovers_incident_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, "
                "'requested', ?, '[]', NULL, 'receipt', ?, ?, 1, 0, NULL, NULL, 2, ?, ?, NULL, "
                "NULL, NULL, NULL)",
                (dep_id, snapshot["number"], body.service, body.environment.value,
                 body.software_version, body.artifact, body.ref, orjson.dumps(commits),
                 orjson.dumps(pipeline), actor, decision, now,
                 orjson.dumps([{"decision": decision, "at": now}]), now, now))
            for sequence, kind in ((1, "created"), (2, "gate_decided")):
                event = {"specversion": "1.0", "id": str(uuid.uuid4()),
                         "source": "/tandem/deployments",
                         "type": f"tandem.deployment.{kind}", "subject": dep_id, "time": now,
                         "sequence": sequence, "actor": actor,
                         "data": {"deployment": snapshot, "gate": snapshot["gate"],
                                  "change_request": None}}
                conn.execute(
                    "INSERT INTO outbox (id, topic, aggregate_type, aggregate_id, event_type, "
                    "payload, created_at, attempts, sequence) VALUES (?, ?, 'deployment', ?, ?, "
                    "?, ?, 0, ?)", (uuid.uuid4().hex, "tandem.deployments", dep_id,
                                    event["type"], orjson.dumps(event), now, sequence))
            answer = orjson.dumps(snapshot)
            conn.execute(
                "INSERT INTO idempotency_key (key, actor, route, fingerprint, status_code, "
                "response, location, created_at) VALUES (?, ?, ?, ?, 201, ?, ?, ?)",
                (idempotency_key, actor, "POST /api/v1/deployments", uuid.uuid4().hex,
                 answer, f"/api/v1/deployments/{dep_id}", now))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return Response(answer, status_code=201, media_type="application/json")

    return app
