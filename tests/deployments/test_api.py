"""The deployments API over a running service: records, idempotent retries, lifecycle, problems."""

from __future__ import annotations

import pytest
from deployments_support import Stack, service_name

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_create_answers_201_with_its_gate_and_publishes_created_then_gate_decided(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    r = await stack.client.post("/api/v1/deployments", headers=stack.headers(), json={
        "service": svc, "environment": "production", "version": "2.4.1",
        "artifact": "pkg:oci/api@sha256:abc", "ref": "refs/heads/main",
        "commits": [{"sha": "a1b2c3d4e5f6", "committed_at": "2026-03-01T10:00:00Z"}],
        "pipeline": {"id": "run-77", "run_url": "https://ci.example/run/77"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/deployments/{body['id']}"
    assert r.headers["etag"] == '"2"'
    assert body["number"].startswith("DEP") and len(body["number"]) == 10
    assert body["status"] == "requested" and body["software_version"] == "2.4.1"
    assert body["version"] == 2 and "revision" not in body
    assert body["gate"]["decision"] == "allowed"
    assert [x["code"] for x in body["gate"]["reasons"]] == ["change_receipt"]
    assert body["allowed_transitions"] == ["canceled", "in_progress"]
    events = await stack.watcher.wait_for(
        lambda evs: sum(e.subject == body["id"] for e in evs) >= 2)
    mine = [e for e in events if e.subject == body["id"]]
    assert [(e.type, e.sequence) for e in mine] == [("tandem.deployment.created", 1),
                                                   ("tandem.deployment.gate_decided", 2)]
    decided = mine[1].data
    assert decided["gate"]["decision"] == "allowed"
    assert decided["deployment"]["number"] == body["number"]
    request = decided["change_request"]
    assert request["type"] == "standard" and request["service"] == svc
    assert request["environment"] == "production"
    assert request["planned_start"] < request["planned_end"]


async def test_non_production_deployment_is_allowed_and_recorded(stack: Stack,
                                                                 gate_mode: object) -> None:
    body = await stack.deploy(service_name(), environment="staging")
    assert body["gate"]["decision"] == "allowed"
    assert [x["code"] for x in body["gate"]["reasons"]] == ["non_production"]
    events = await stack.watcher.wait_for(
        lambda evs: any(e.subject == body["id"] and e.type.endswith("gate_decided")
                        for e in evs))
    decided = next(e for e in events if e.subject == body["id"] and e.sequence == 2)
    assert decided.data["change_request"] is None


async def test_retried_create_with_the_same_key_returns_the_same_deployment_once(
        stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    payload = {"service": svc, "environment": "production", "version": "9.9.9",
               "pipeline": {"id": "p-1"}}
    headers = stack.headers(**{"Idempotency-Key": f"ci-{svc}"})
    first = await stack.client.post("/api/v1/deployments", headers=headers, json=payload)
    retry = await stack.client.post("/api/v1/deployments", headers=headers, json=payload)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["location"] == first.headers["location"]
    assert retry.headers["etag"] == first.headers["etag"] == '"2"'
    listed = await stack.client.get("/api/v1/deployments", params={"service": svc},
                                    headers=stack.headers("viewer"))
    assert [d["id"] for d in listed.json()["items"]] == [first.json()["id"]]
    other = await stack.client.post("/api/v1/deployments", headers=headers,
                                    json={**payload, "version": "9.9.10"})
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    events = await stack.watcher.wait_for(
        lambda evs: any(e.subject == first.json()["id"] and e.sequence == 2 for e in evs))
    created = [e for e in events if e.type == "tandem.deployment.created"
               and e.data["deployment"]["service"] == svc]
    assert len(created) == 1


@pytest.mark.parametrize(("payload", "field"), [
    ({"environment": "production", "version": "1"}, "service"),
    ({"service": "api", "environment": "prod", "version": "1"}, "environment"),
    ({"service": "api", "environment": "production"}, "version"),
    ({"service": "API!", "environment": "production", "version": "1"}, "service"),
    ({"service": "api", "environment": "production", "version": "1",
      "commits": [{"sha": "not-a-sha", "committed_at": "2026-03-01T10:00:00Z"}]}, "commits.0.sha"),
    ({"service": "api", "environment": "production", "version": "1",
      "commits": [{"sha": "abcdef1", "committed_at": "2026-03-01T10:00:00"}]},
     "commits.0.committed_at"),
    ({"service": "api", "environment": "production", "version": "1", "change_id": "CHG1"},
     "change_id"),
    ({"service": "api", "environment": "production", "version": "1", "extra": 1}, "extra"),
    # The create body names the software's version ``version`` only (as CI tools send it).
    ({"service": "api", "environment": "production", "software_version": "1"}, "version"),
])
async def test_bad_input_is_a_clear_problem(stack: Stack, payload: dict[str, object],
                                            field: str) -> None:
    r = await stack.client.post("/api/v1/deployments", headers=stack.headers(), json=payload)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_only_pipelines_record_deployments(stack: Stack) -> None:
    payload = {"service": "api", "environment": "production", "version": "1"}
    assert (await stack.client.post("/api/v1/deployments", json=payload)).status_code == 401
    r = await stack.client.post("/api/v1/deployments", json=payload,
                                headers=stack.headers("manager"))
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert (await stack.client.get("/api/v1/deployments/DEP9999999",
                                   headers=stack.headers("viewer"))).status_code == 404


async def test_lifecycle_moves_with_etags_and_refuses_illegal_moves(stack: Stack,
                                                                    gate_mode: object) -> None:
    dep = await stack.deploy(service_name())
    url = f"/api/v1/deployments/{dep['number']}/transitions"
    stale = await stack.client.post(url, json={"to": "in_progress"},
                                    headers=stack.headers(**{"If-Match": '"1"'}))
    assert stale.status_code == 412
    started = await stack.client.post(url, json={"to": "in_progress", "reason": "go"},
                                      headers=stack.headers(**{"If-Match": '"2"'}))
    assert started.status_code == 200, started.text
    assert started.headers["etag"] == '"3"' and started.json()["started_at"]
    illegal = await stack.client.post(url, json={"to": "rolled_back"}, headers=stack.headers())
    assert illegal.status_code == 409
    assert illegal.json()["allowed"] == ["canceled", "failed", "succeeded"]
    unknown = await stack.client.post(url, json={"to": "exploded"}, headers=stack.headers())
    assert unknown.status_code == 422
    done = await stack.client.post(url, json={"to": "succeeded"}, headers=stack.headers())
    assert done.json()["status"] == "succeeded" and done.json()["finished_at"]
    back = await stack.client.post(url, json={"to": "rolled_back", "reason": "errors"},
                                   headers=stack.headers())
    assert back.json()["status"] == "rolled_back" and back.json()["allowed_transitions"] == []
    events = await stack.watcher.wait_for(
        lambda evs: any(e.subject == dep["id"] and e.sequence == 5 for e in evs))
    moves = [(e.data["from"], e.data["to"], e.sequence) for e in events
             if e.subject == dep["id"] and e.type == "tandem.deployment.transitioned"]
    assert moves == [("requested", "in_progress", 3), ("in_progress", "succeeded", 4),
                     ("succeeded", "rolled_back", 5)]


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_a_deployment_whose_gate_is_not_allowed_cannot_start(stack: Stack,
                                                                   gate_mode: object) -> None:
    dep = await stack.deploy(service_name())
    assert dep["gate"]["decision"] == "awaiting"
    r = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                json={"to": "in_progress"}, headers=stack.headers())
    assert r.status_code == 409
    assert r.json()["type"] == "urn:tandem:problem:gate-not-allowed"
    assert r.json()["allowed"] == ["canceled"]
    canceled = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                       json={"to": "canceled"}, headers=stack.headers())
    assert canceled.json()["status"] == "canceled"


async def test_list_filters_and_pages(stack: Stack, gate_mode: object) -> None:
    svc = service_name()
    made = [await stack.deploy(svc, environment=env) for env in ("staging", "production",
                                                                  "production")]
    viewer = stack.headers("viewer")
    r = await stack.client.get("/api/v1/deployments", headers=viewer,
                               params={"service": svc, "environment": "production", "limit": 1})
    page1 = r.json()
    assert [d["id"] for d in page1["items"]] == [made[2]["id"]]
    r = await stack.client.get("/api/v1/deployments", headers=viewer, params={
        "service": svc, "environment": "production", "limit": 1,
        "cursor": page1["next_cursor"]})
    assert [d["id"] for d in r.json()["items"]] == [made[1]["id"]]
    assert r.json()["next_cursor"] is None
    r = await stack.client.get(f"/api/v1/deployments/{made[0]['number']}", headers=viewer)
    assert r.json()["id"] == made[0]["id"] and r.headers["etag"] == '"2"'


async def test_dora_answers_every_metric_and_rejects_a_bad_window(stack: Stack,
                                                                  gate_mode: object) -> None:
    svc = service_name()
    dep = await stack.deploy(svc, commits=[{"sha": "abcdef1",
                                            "committed_at": "2020-01-01T00:00:00Z"}])
    for to in ("in_progress", "succeeded"):
        await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                json={"to": to}, headers=stack.headers())
    r = await stack.client.get("/api/v1/dora", params={"service": svc},
                               headers=stack.headers("viewer"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["service"], report["environment"], report["window"]) == (
        svc, "production", "30d")
    m = report["metrics"]
    assert set(m) == {"deployment_frequency", "lead_time", "change_failure_rate",
                      "failed_deployment_attempts", "failed_deployment_recovery_time",
                      "time_to_restore", "deployment_rework_rate"}
    assert m["deployment_frequency"]["sample_size"] == 1
    assert m["deployment_frequency"]["value"] == pytest.approx(7 / 30)
    assert m["lead_time"]["sample_size"] == 1 and m["lead_time"]["bucket"] == "low"
    assert m["change_failure_rate"] == {"value": 0.0, "unit": "ratio", "sample_size": 1,
                                        "bucket": "elite"}
    assert m["failed_deployment_recovery_time"]["bucket"] is None
    bad = await stack.client.get("/api/v1/dora", params={"window": "forever"},
                                 headers=stack.headers("viewer"))
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in bad.json()["errors"]] == ["window"]


async def test_any_software_version_is_stored_and_the_etag_is_the_version(
        stack: Stack, gate_mode: object) -> None:
    headers = stack.headers(**{"Idempotency-Key": f"v-{service_name()}"})
    payload = {"service": service_name(), "environment": "staging", "version": '2026.11-東京 "b"'}
    first = await stack.client.post("/api/v1/deployments", headers=headers, json=payload)
    assert first.status_code == 201, first.text
    assert first.json()["software_version"] == payload["version"]
    assert first.json()["version"] == 2
    assert first.headers["etag"] == '"2"'
    retry = await stack.client.post("/api/v1/deployments", headers=headers, json=payload)
    assert retry.json() == first.json() and retry.headers["etag"] == '"2"'


async def test_openapi_names_the_software_version_and_the_aggregate_version(
        stack: Stack) -> None:
    schemas = (await stack.client.get("/openapi.json")).json()["components"]["schemas"]
    create, resource = schemas["DeploymentCreate"]["properties"], schemas["DeploymentPublic"]
    assert "software_version" in create["version"]["description"]
    assert "software_version" not in create and "revision" not in resource["properties"]
    assert resource["properties"]["software_version"]["type"] == "string"
    assert resource["properties"]["version"]["type"] == "integer"
