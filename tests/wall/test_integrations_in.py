"""The tools that already know about deployments, pointed at Tandem unchanged: GitHub's
``deployment`` and ``deployment_status`` webhooks, GitLab's deployment events and PagerDuty
Change Events, with payloads and headers as their documentation shows them
(``tests/deployments/fixtures``), over HTTP into incidents, changes and deployments on one set
of topics, on both databases.

- a GitHub deployment failing in production opens an incident (S2) naming it its cause, and
  DORA counts it; a redelivery changes nothing; a bad signature is 401 and says nothing why;
- a catalog service's ``repository`` names the service of a repository's deployments;
- GitLab's statuses move its deployment; its token is checked;
- a PagerDuty change event is a succeeded deployment that suspects and DORA see.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from wall_support import Wall, events_about, unique

from deployments.models import FreezeView, ServiceView
from incidents.models import DeploymentView as IncidentsDeploymentView
from tandem.events import new_event

pytestmark = pytest.mark.asyncio(loop_scope="module")

FIXTURES = Path(__file__).parents[1] / "deployments" / "fixtures"
GITHUB_SECRET = "It's a Secret to Everybody"
GITLAB_TOKEN = "gitlab-" + uuid.uuid4().hex
ROUTING_KEY = uuid.uuid4().hex
CHANGE_SERVICE = unique("built")

DEPLOYMENTS = {"github_secret": GITHUB_SECRET, "gitlab_token": GITLAB_TOKEN,
               "routing_keys": f"{ROUTING_KEY}={CHANGE_SERVICE}"}


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())  # type: ignore[no-any-return]


def github_payload(name: str, repo: str, deployment_id: int, *, owner: str = "Codertocat",
                   state: str | None = None) -> dict[str, Any]:
    """A documented GitHub payload, moved to repository ``owner/repo`` and deployment id."""
    payload = copy.deepcopy(fixture(name))
    payload["repository"].update(name=repo, full_name=f"{owner}/{repo}",
                                 html_url=f"https://github.com/{owner}/{repo}")
    payload["deployment"]["id"] = deployment_id
    if state is not None:
        payload["deployment_status"]["state"] = state
        payload["deployment_status"]["id"] = deployment_id * 10 + len(state)
    return payload


def github_headers(event: str, body: bytes, *, secret: str = GITHUB_SECRET,
                   delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery (its documentation's list)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/044aadd",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-GitHub-Hook-Installation-Target-ID": "79929171",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
        "X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body,
                                                    hashlib.sha256).hexdigest(),
    }


async def send_github(wall: Wall, event: str, payload: dict[str, Any], *, expect: int = 200,
                      delivery: str | None = None, **header_options: Any) -> Any:
    body = json.dumps(payload).encode()
    r = await wall.clients["deployments"].post(
        "/integrations/github", content=body,
        headers=github_headers(event, body, delivery=delivery, **header_options))
    assert r.status_code == expect, r.text
    return r


async def deployments_of(wall: Wall, service: str) -> list[dict[str, Any]]:
    page = await wall.call("deployments", "GET", "/api/v1/deployments",
                           params={"service": service})
    return page["items"]  # type: ignore[no-any-return]


async def incidents_of(wall: Wall, service: str) -> list[dict[str, Any]]:
    page = await wall.call("incidents", "GET", "/api/v1/incidents", params={"service": service})
    return page["items"]  # type: ignore[no-any-return]


async def dora(wall: Wall, service: str) -> dict[str, Any]:
    report = await wall.call("deployments", "GET", "/api/v1/dora", params={"service": service})
    return report["metrics"]  # type: ignore[no-any-return]


async def test_a_github_deployment_failing_in_production_opens_an_incident_and_counts(
        wall: Wall) -> None:
    repo, deployment_id = unique("hello"), uuid.uuid4().int % 10**9
    answer = (await send_github(wall, "deployment",
                                github_payload("github_deployment.json", repo,
                                               deployment_id))).json()
    dep = answer["deployment"]
    assert (dep["service"], dep["environment"], dep["status"]) == (repo, "production",
                                                                  "requested")
    assert dep["gate"]["decision"] == "allowed"
    assert dep["external_id"] == f"github:codertocat/{repo}:{deployment_id}"
    assert dep["commits"] == [{"sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                               "committed_at": None}]
    assert dep["triggered_by"] == "github:Codertocat"

    moved = (await send_github(wall, "deployment_status", github_payload(
        "github_deployment_status.json", repo, deployment_id, state="failure"))).json()
    assert moved["status"] == "moved"
    assert moved["deployment"]["status"] == "failed"

    async def opened() -> list[dict[str, Any]] | None:
        found = await incidents_of(wall, repo)
        return found or None

    [incident] = await wall.until(opened)
    assert incident["source"] == "deployment"
    assert incident["cause_deployment_id"] == dep["id"]
    assert incident["environment"] == "production"
    metrics = await dora(wall, repo)
    assert metrics["failed_deployment_attempts"]["value"] == 1


async def test_a_redelivered_github_webhook_changes_nothing(wall: Wall) -> None:
    repo, deployment_id = unique("hello"), uuid.uuid4().int % 10**9
    created = github_payload("github_deployment.json", repo, deployment_id)
    delivery = str(uuid.uuid4())
    first = (await send_github(wall, "deployment", created, delivery=delivery)).json()
    # The same delivery again (GitHub's "Redeliver"), then the same deployment in a new one.
    again = (await send_github(wall, "deployment", created, delivery=delivery)).json()
    assert again == {"status": "duplicate"}
    await send_github(wall, "deployment", created)
    succeeded = github_payload("github_deployment_status.json", repo, deployment_id,
                               state="success")
    status_delivery = str(uuid.uuid4())
    await send_github(wall, "deployment_status", succeeded, delivery=status_delivery)
    await send_github(wall, "deployment_status", succeeded, delivery=status_delivery)
    late = (await send_github(wall, "deployment_status", succeeded)).json()
    assert late["status"] == "recorded"
    [dep] = await deployments_of(wall, repo)
    assert dep["id"] == first["deployment"]["id"]
    assert dep["status"] == "succeeded"
    published = await events_about(wall, "deployments", dep["id"], lambda evs: any(
        e.data.get("to") == "succeeded" for e in evs))
    assert [e.type for e in published].count("tandem.deployment.created") == 1
    assert [e.data["to"] for e in published
            if e.type == "tandem.deployment.transitioned"] == ["in_progress", "succeeded"]


async def test_a_deployment_and_its_first_status_arriving_together_are_one_deployment(
        wall: Wall) -> None:
    repo, deployment_id = unique("hello"), uuid.uuid4().int % 10**9
    answers = await asyncio.gather(
        send_github(wall, "deployment", github_payload("github_deployment.json", repo,
                                                       deployment_id)),
        send_github(wall, "deployment_status", github_payload(
            "github_deployment_status.json", repo, deployment_id, state="in_progress")))
    assert {a.json()["deployment"]["id"] for a in answers} == {
        d["id"] for d in await deployments_of(wall, repo)}
    [dep] = await deployments_of(wall, repo)
    assert dep["status"] == "in_progress"


async def test_a_github_deployment_the_gate_prevents_does_not_start(wall: Wall) -> None:
    repo, deployment_id = unique("frozen"), uuid.uuid4().int % 10**9
    start = datetime.now(UTC) - timedelta(minutes=5)
    freeze = await wall.call("changes", "POST", "/api/v1/freezes", role="manager", expect=201,
                             json={"services": [repo], "reason": "release freeze",
                                   "starts_at": start.isoformat(),
                                   "ends_at": (start + timedelta(hours=2)).isoformat()})
    await wall.until(lambda: wall.row("deployments", FreezeView, uuid.UUID(freeze["id"])))
    dep = (await send_github(wall, "deployment", github_payload(
        "github_deployment.json", repo, deployment_id))).json()["deployment"]
    assert dep["gate"]["decision"] == "prevented"
    refused = await send_github(wall, "deployment_status", github_payload(
        "github_deployment_status.json", repo, deployment_id, state="success"), expect=409)
    assert refused.json()["gate"]["decision"] == "prevented"
    [after] = await deployments_of(wall, repo)
    assert after["status"] == "requested"


async def test_a_bad_or_missing_signature_is_401_and_says_nothing_why(wall: Wall) -> None:
    repo = unique("hello")
    payload = github_payload("github_deployment.json", repo, 1)
    body = json.dumps(payload).encode()
    client = wall.clients["deployments"]
    wrong = await client.post("/integrations/github", content=body,
                              headers=github_headers("deployment", body, secret="guess"))
    headers = github_headers("deployment", body)
    del headers["X-Hub-Signature-256"]
    missing = await client.post("/integrations/github", content=body, headers=headers)
    tampered = await client.post("/integrations/github", content=body + b" ",
                                 headers=github_headers("deployment", body))
    assert [wrong.status_code, missing.status_code, tampered.status_code] == [401, 401, 401]
    assert wrong.json() == missing.json() == tampered.json()
    assert "signature" not in wrong.text.lower()
    assert await deployments_of(wall, repo) == []


async def test_github_ping_is_200_and_other_events_are_ignored(wall: Wall) -> None:
    ping = await send_github(wall, "ping", fixture("github_ping.json"))
    assert ping.json()["status"] == "pong"
    push = await send_github(wall, "push", {"ref": "refs/heads/main"}, expect=202)
    assert push.json() == {"status": "ignored", "event": "push"}


async def test_a_github_payload_missing_fields_is_422_naming_them(wall: Wall) -> None:
    payload = github_payload("github_deployment.json", unique("hello"), 2)
    del payload["deployment"]["sha"], payload["deployment"]["environment"]
    r = await send_github(wall, "deployment", payload, expect=422)
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"deployment.sha", "deployment.environment"}


async def test_an_unknown_environment_is_422_naming_the_map(wall: Wall) -> None:
    payload = github_payload("github_deployment.json", unique("hello"), 3)
    payload["deployment"]["environment"] = "github-pages"
    r = await send_github(wall, "deployment", payload, expect=422)
    assert r.json()["errors"][0]["field"] == "environment"
    assert "TANDEM_DEPLOYMENTS_ENVIRONMENT_MAP" in r.json()["errors"][0]["message"]


async def test_the_catalogs_repository_names_the_service(wall: Wall) -> None:
    service, repo = unique("payments"), unique("Payments-API")
    service_id = uuid.uuid4()
    event = new_event(service="catalog", type="tandem.service.created", subject=service_id,
                      sequence=1, actor="owner-user", data={"service": {
                          "id": str(service_id), "number": "SVC0000001", "name": service,
                          "owner_team": None, "operations_team": None,
                          "repository": f"https://github.com/Acme/{repo}.git"}})
    producer = AIOKafkaProducer(bootstrap_servers=wall.platform.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(wall.platform.topic("catalog"), value=event.to_bytes(),
                                     key=str(service_id).encode())
    finally:
        await producer.stop()
    await wall.until(lambda: wall.row("deployments", ServiceView, service_id))
    payload = github_payload("github_deployment.json", repo, 4, owner="acme")
    payload["deployment"]["environment"] = "Prod"
    dep = (await send_github(wall, "deployment", payload)).json()["deployment"]
    assert (dep["service"], dep["environment"]) == (service, "production")


def gitlab_headers(token: str = GITLAB_TOKEN, delivery: str | None = None) -> dict[str, str]:
    """The headers GitLab sends with a deployment event."""
    return {"Content-Type": "application/json", "User-Agent": "GitLab/17.0.0",
            "X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": token,
            "X-Gitlab-Instance": "http://10.126.0.2:3000",
            "X-Gitlab-Webhook-UUID": "30d6c8a1-e64c-4e16-9b31-1fdda0a8bd3d",
            "X-Gitlab-Event-UUID": delivery or str(uuid.uuid4())}


async def test_gitlab_deployment_events_move_the_deployment(wall: Wall) -> None:
    project = unique("shop")
    payload = fixture("gitlab_deployment.json")
    payload["project"].update(id=uuid.uuid4().int % 10**6, name=project,
                              web_url=f"https://gitlab.example.com/acme/{project}")
    client = wall.clients["deployments"]

    async def send(status: str, delivery: str | None = None, token: str = GITLAB_TOKEN) -> Any:
        return await client.post("/integrations/gitlab", json={**payload, "status": status},
                                 headers=gitlab_headers(token, delivery))

    refused = await send("running", token="wrong")
    assert refused.status_code == 401
    assert await deployments_of(wall, project) == []
    running = await send("running")
    assert running.status_code == 200, running.text
    dep = running.json()["deployment"]
    assert (dep["service"], dep["environment"], dep["status"]) == (project, "staging",
                                                                  "in_progress")
    assert dep["commits"][0]["sha"] == "279484c09fbe69ededfced8c1bb6e6d24616b468"
    delivery = str(uuid.uuid4())
    done = await send("success", delivery)
    assert done.json()["deployment"]["status"] == "succeeded"
    assert (await send("success", delivery)).json() == {"status": "duplicate"}
    assert (await send("canceled")).json()["status"] == "recorded"
    [dep] = await deployments_of(wall, project)
    assert dep["status"] == "succeeded"
    ignored = await client.post("/integrations/gitlab", json={"object_kind": "push"},
                                headers=gitlab_headers())
    assert ignored.status_code == 202


async def test_a_pagerduty_change_event_is_a_succeeded_deployment_suspects_and_dora_see(
        wall: Wall) -> None:
    event = fixture("pagerduty_change_event.json")
    at = datetime.now(UTC) - timedelta(minutes=10)
    event["routing_key"] = ROUTING_KEY
    event["payload"]["timestamp"] = at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    client = wall.clients["deployments"]
    first = await client.post("/v2/change/enqueue", json=event)
    assert first.status_code == 202
    assert first.json() == {"status": "success", "message": "Change event processed"}
    assert (await client.post("/v2/change/enqueue", json=event)).status_code == 202
    [dep] = await deployments_of(wall, CHANGE_SERVICE)
    assert dep["status"] == "succeeded"
    assert dep["summary"] == event["payload"]["summary"]
    assert dep["links"] == event["links"]
    assert dep["software_version"] == "2"
    assert datetime.fromisoformat(dep["finished_at"]) == at.replace(
        microsecond=at.microsecond // 1000 * 1000)
    assert (await dora(wall, CHANGE_SERVICE))["deployment_frequency"]["sample_size"] == 1

    await wall.until(lambda: wall.row("incidents", IncidentsDeploymentView,
                                      uuid.UUID(dep["id"])))
    incident = await wall.call("incidents", "POST", "/api/v1/incidents", role="practitioner",
                               expect=201, json={"title": "Checkout slow",
                                                 "service": CHANGE_SERVICE, "impact": 2,
                                                 "urgency": 2, "environment": "production"})
    suspects = await wall.call("incidents", "GET",
                               f"/api/v1/incidents/{incident['id']}/suspects")
    assert dep["id"] in json.dumps(suspects)

    unknown = await client.post("/v2/change/enqueue", json={**event, "routing_key": "nope"})
    assert unknown.status_code == 400
    assert unknown.json()["status"] == "invalid event"
    no_summary = await client.post("/v2/change/enqueue", json={
        "routing_key": ROUTING_KEY, "payload": {"source": "ci"}})
    assert no_summary.status_code == 400
    assert "'payload.summary'" in no_summary.json()["errors"][0]
