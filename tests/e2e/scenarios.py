"""Scenarios 1-5 of Tandem across the wall, driven only through HTTP, the CLI and the topics.

Each scenario uses its own service name, so scenarios share a stack without seeing each
other, and returns the aggregates it touched (for the subscriber's check, scenario 6).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from e2e.stack import Stack, cli, cli_start
from tandem_testing import eventually

#: The (aggregate kind, id) pairs each scenario touched, by scenario number.
Touched = dict[str, set[tuple[str, str]]]
#: Where each aggregate is read back: its service and collection.
COLLECTION = {"incident": ("incidents", "incidents"), "change": ("changes", "changes"),
              "freeze": ("changes", "freezes"), "deployment": ("deployments", "deployments")}

EXIT_PREVENTED = 3
EXIT_AWAITING = 4


def unique_service(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:6]}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Http:
    """Plain HTTP calls to the stack, failing with the answer and the service's log."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = httpx.AsyncClient(timeout=30)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def call(self, method: str, service: str, path: str, *, role: str,
                   expect: int | None = None, **kwargs: Any) -> Any:
        r = await self.client.request(method, self.stack.url(service) + path,
                                      headers=self.stack.headers(role), **kwargs)
        wanted = expect if expect is not None else (201 if method == "POST" and
                                                    not path.endswith("transitions") else 200)
        if r.status_code != wanted:
            raise AssertionError(f"{method} {service}{path} answered {r.status_code}, not "
                                 f"{wanted}: {r.text}\n--- {service} log ---\n"
                                 f"{self.stack.log_tail(service)}")
        return r.json() if r.content else None

    async def get(self, service: str, path: str, role: str = "viewer", **kwargs: Any) -> Any:
        return await self.call("GET", service, path, role=role, **kwargs)

    async def items(self, target: str, path: str, **params: Any) -> list[dict[str, Any]]:
        """A list's items; ``params`` are its filters (``service=...``)."""
        return (await self.get(target, path, params=params))["items"]  # type: ignore[no-any-return]


async def until(stack: Stack, check: Callable[[], Awaitable[Any]], what: str,
                timeout: float = 30) -> Any:
    """``eventually`` with a message saying which cross-service effect never came, and the
    services' logs."""
    try:
        return await eventually(check, timeout=timeout, interval=0.2)
    except TimeoutError as exc:
        logs = "\n".join(f"--- {name} log ---\n{stack.log_tail(name, 25)}"
                         for name in stack.services)
        raise AssertionError(f"never happened: {what} ({exc})\n{logs}") from None


def deployment_json(result: Any) -> dict[str, Any]:
    assert result.stdout, result
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def deploy(stack: Stack, service: str, version: str, *extra: str,
                 expect_exit: int = 0) -> dict[str, Any]:
    """``tandem deploy start`` as a pipeline, expecting the exit code of the gate's decision."""
    committed = iso(datetime.now(UTC) - timedelta(hours=3))
    result = await cli(stack.cli_env("pipeline"), "deploy", "start", "--service", service,
                       "--version", version, "--commit", f"{uuid.uuid4().hex[:12]}@{committed}",
                       "--pipeline-id", f"run-{uuid.uuid4().hex[:8]}", "--json", *extra)
    assert result.code == expect_exit, f"{result}\n{stack.log_tail('deployments')}"
    return deployment_json(result)


async def deploy_until(stack: Stack, service: str, version: str, *extra: str,
                       expect_exit: int) -> dict[str, Any]:
    """Deploy until the gate answers ``expect_exit``, as a pipeline retrying would.

    The gate decides from its own projections of the other topics, which trail the other
    services' APIs by a moment; an attempt decided before they caught up is canceled.
    """
    for attempt in range(20):
        committed = iso(datetime.now(UTC) - timedelta(hours=3))
        result = await cli(stack.cli_env("pipeline"), "deploy", "start", "--service", service,
                           "--version", f"{version}" if attempt == 0 else f"{version}-{attempt}",
                           "--commit", f"{uuid.uuid4().hex[:12]}@{committed}", "--json", *extra)
        if result.code == expect_exit:
            return deployment_json(result)
        assert result.code in (0, EXIT_PREVENTED, EXIT_AWAITING), result
        early = deployment_json(result)
        canceled = await cli(stack.cli_env("pipeline"), "deploy", "finish", early["id"],
                             "--status", "canceled", "--reason", "decided before the gate knew")
        assert canceled.code == 0, canceled
    raise AssertionError(f"the gate never answered exit {expect_exit}: {result}\n"
                         f"{stack.log_tail('deployments')}")


async def finish(stack: Stack, ref: str, status: str) -> dict[str, Any]:
    result = await cli(stack.cli_env("pipeline"), "deploy", "finish", ref, "--status", status,
                       "--json")
    assert result.code == 0, f"{result}\n{stack.log_tail('deployments')}"
    return deployment_json(result)


async def dora(http: Http, service: str) -> dict[str, Any]:
    body = await http.get("deployments", "/api/v1/dora",
                          params={"service": service, "environment": "production",
                                  "window": "30d"})
    return body["metrics"]  # type: ignore[no-any-return]


# --- scenario 1 ---------------------------------------------------------------------------


async def approval_mode(stack: Stack) -> set[tuple[str, str]]:
    """`deploy start` awaits; a manager approves the change; the CLI exits 0;
    `deploy finish --status succeeded` moves the change to review.

    The operator switches the gate to approval mode: a restart of the deployments service
    with ``TANDEM_GATE_MODE=approval``.
    """
    stack.use_gate_mode("approval")
    service = unique_service("s1")
    pipeline = f"run-{uuid.uuid4().hex[:8]}"
    start_args = ("deploy", "start", "--service", service, "--version", "2.0.0",
                  "--pipeline-id", pipeline, "--wait", "90", "--json")
    async with await cli_start(stack.cli_env("pipeline"), *start_args,
                               terminal=True) as waiting, Http(stack) as http:
        async def change_in_assess() -> Any:
            items = await http.items("changes", "/api/v1/changes", service=service)
            return items[0] if items and items[0]["status"] == "assess" else None

        change = await until(stack, change_in_assess, "the gate's normal change in assess")
        assert change["type"] == "normal"
        deployments = await http.items("deployments", "/api/v1/deployments", service=service)
        assert [d["gate"]["decision"] for d in deployments] == ["awaiting"]
        assert waiting.process.returncode is None, "deploy start must wait while awaiting"
        # Another pipeline step asking meanwhile: still awaiting (4), after its own short wait.
        asked = await cli(stack.cli_env("viewer"), "deploy", "gate", deployments[0]["number"],
                          "--wait", "1")
        assert asked.code == EXIT_AWAITING, asked
        assert asked.stdout.startswith("awaiting")
        assert "awaiting: " in asked.stderr  # the reasons, for the pipeline's log

        approved = await cli(stack.cli_env("manager", "carol-manager"), "change", "approve",
                             change["number"], "--comment", "go", "--json")
        assert approved.code == 0, approved
        assert json.loads(approved.stdout)["status"] == "scheduled"

        started = await waiting.result(timeout=60)
        assert started.code == 0, f"{started}\n{stack.log_tail('deployments')}"
        deployment = deployment_json(started)
        # While it waited, a person's terminal showed a spinner, the gate's reasons above it,
        # every line within the terminal's 80 columns.
        screen = started.stderr.replace("\033[K", "").replace("\r\n", "\n")  # the pty's
        assert " awaiting the gate, " in screen, started.stderr
        said = screen.split(" awaiting:", 1)[1].split("\r")[0]
        assert said.splitlines()[1].startswith("  - "), "the reasons are lines of their own"
        assert max(len(line) for line in re.split("[\r\n]", screen)) <= 80, screen
        assert deployment["gate"]["decision"] == "allowed"
        assert deployment["status"] == "in_progress"
        assert deployment["gate"]["change_id"] == change["id"]

        # A retried CI job (same pipeline, service, environment, version) replays, not redeploys.
        retried = await cli(stack.cli_env("pipeline"), *start_args)
        assert retried.code == 0, retried
        assert deployment_json(retried)["id"] == deployment["id"]
        assert len(await http.items("deployments", "/api/v1/deployments", service=service)) == 1

        def change_in(status: str) -> Callable[[], Awaitable[Any]]:
            async def check() -> Any:
                body = await http.get("changes", f"/api/v1/changes/{change['id']}")
                return body if body["status"] == status else None
            return check

        await until(stack, change_in("implement"), "change to implement when in progress")
        finished = await finish(stack, deployment["number"], "succeeded")
        assert finished["status"] == "succeeded"
        await until(stack, change_in("review"), "change to review when succeeded")

        # The next release: start does not wait (exit 4); after the approval another step's
        # `deploy gate --wait` is allowed and moves the deployment on, as start would have.
        later = await cli(stack.cli_env("pipeline"), "deploy", "start", "--service", service,
                          "--version", "2.1.0", "--wait", "0", "--json")
        assert later.code == EXIT_AWAITING, later
        second = deployment_json(later)

        async def its_change_in_assess() -> Any:
            items = await http.items("changes", "/api/v1/changes", service=service)
            return next((c for c in items if c["status"] == "assess"), None)

        next_change = await until(stack, its_change_in_assess, "the second change in assess")
        approved = await cli(stack.cli_env("manager", "carol-manager"), "change", "approve",
                             next_change["number"], "--comment", "go")
        assert approved.code == 0, approved
        gated = await cli(stack.cli_env("pipeline"), "deploy", "gate", second["number"],
                          "--wait", "60")
        assert gated.code == 0, gated
        assert gated.stdout.startswith("allowed")
        moved = await http.get("deployments", f"/api/v1/deployments/{second['id']}")
        assert moved["status"] == "in_progress"
        await finish(stack, second["number"], "succeeded")
    return {("deployment", deployment["id"]), ("change", change["id"]),
            ("deployment", second["id"]), ("change", next_change["id"])}


# --- scenario 2 ---------------------------------------------------------------------------


async def failure_opens_incident(stack: Stack) -> set[tuple[str, str]]:
    """A failed production deployment opens an incident with the deployment as cause; after it
    is resolved, MTTR and DORA's failure rate and recovery time show it."""
    stack.use_gate_mode("receipt")
    service = unique_service("s2")
    deployment = await deploy(stack, service, "1.4.0")
    assert deployment["gate"]["decision"] == "allowed"
    await finish(stack, deployment["number"], "failed")
    async with Http(stack) as http:
        async def opened() -> Any:
            return await http.items("incidents", "/api/v1/incidents", service=service)

        incidents = await until(stack, opened, "an incident for the failed deployment")
        assert len(incidents) == 1
        incident = incidents[0]
        assert incident["cause_deployment_id"] == deployment["id"]
        assert incident["environment"] == "production"

        resolved = await cli(stack.cli_env("practitioner"), "incident", "resolve",
                             incident["number"], "--code", "rolled_back", "--notes",
                             "Rolled back to 1.3.9", "--json")
        assert resolved.code == 0, resolved
        assert json.loads(resolved.stdout)["status"] == "resolved"

        metrics = await http.get("incidents", "/api/v1/incident-metrics",
                                 params={"service": service})
        assert metrics["mttr"]["count"] == 1

        async def dora_shows_recovery() -> Any:
            m = await dora(http, service)
            return m if m["failed_deployment_recovery_time"]["sample_size"] == 1 else None

        metrics = await until(stack, dora_shows_recovery, "DORA recovery time of the failure")
        # It never served: a failed deployment attempt, beside the change failure rate.
        cfr = metrics["change_failure_rate"]
        assert (cfr["value"], cfr["unit"], cfr["sample_size"], cfr["bucket"]) == (
            None, "ratio", 0, None)
        assert metrics["failed_deployment_attempts"]["value"] == 1
        recovery = metrics["failed_deployment_recovery_time"]
        assert recovery["unit"] == "hours" and recovery["bucket"] == "elite"
        assert 0 <= recovery["value"] < 1
        assert metrics["time_to_restore"]["sample_size"] == 1
        # Still exactly one incident: the failure was not reported twice.
        assert len(await opened()) == 1
        touched = {("deployment", deployment["id"]), ("incident", incident["id"])}
        changes = await http.items("changes", "/api/v1/changes", service=service)
        touched |= {("change", c["id"]) for c in changes}
    return touched


# --- scenario 3 ---------------------------------------------------------------------------


async def major_incident_freeze(stack: Stack) -> set[tuple[str, str]]:
    """A P1 incident freezes its service; a normal deploy is prevented; an emergency change
    linked to the incident lets the fix through; resolving the incident ends the freeze."""
    stack.use_gate_mode("receipt")
    service = unique_service("s3")
    practitioner = stack.cli_env("practitioner", "pat-practitioner")
    created = await cli(practitioner, "incident", "create", "--title", "Checkout down",
                        "--service", service, "--impact", "1", "--urgency", "1", "--json")
    assert created.code == 0, created
    incident = json.loads(created.stdout)
    assert incident["priority"] == 1 and incident["major"] is True
    async with Http(stack) as http:
        async def frozen() -> Any:
            items = await http.items("changes", "/api/v1/freezes", service=service)
            mine = [f for f in items if f.get("incident_id") == incident["id"]]
            return mine[0] if mine and mine[0]["status"] == "active" else None

        freeze = await until(stack, frozen, "a freeze for the P1 incident")
        assert freeze["source"] == "incident"
        assert service in freeze["services"]

        prevented = await deploy_until(stack, service, "3.1.0", expect_exit=EXIT_PREVENTED)
        assert prevented["gate"]["decision"] == "prevented"
        assert prevented["status"] == "requested"

        fix = await cli(practitioner, "change", "create", "--type", "emergency", "--title",
                        "Hotfix checkout", "--service", service, "--incident", incident["id"],
                        "--json")
        assert fix.code == 0, fix
        change = json.loads(fix.stdout)
        moved = await cli(practitioner, "change", "transition", change["number"], "authorize",
                          "--json")
        assert moved.code == 0, moved
        # The incident's own freeze is no conflict of the emergency change that fixes it:
        # the manager's approval schedules it.
        approved = await cli(stack.cli_env("manager", "carol-manager"), "change", "approve",
                             change["number"], "--json")
        assert approved.code == 0, approved
        assert json.loads(approved.stdout)["status"] == "scheduled", approved

        hotfix = await deploy_until(stack, service, "3.1.1", "--change", change["number"],
                                    expect_exit=0)
        assert hotfix["gate"]["decision"] == "allowed"
        await finish(stack, hotfix["number"], "succeeded")

        resolved = await cli(practitioner, "incident", "resolve", incident["number"],
                             "--code", "resolved_by_change", "--notes", "Hotfix 3.1.1")
        assert resolved.code == 0, resolved

        async def thawed() -> Any:
            body = await http.get("changes", f"/api/v1/freezes/{freeze['id']}")
            return body if body["status"] == "ended" else None

        await until(stack, thawed, "the incident's freeze to end on resolution")
        listed = await cli(stack.cli_env("viewer"), "freeze", "list", "--service", service,
                           "--json")
        assert listed.code == 0, listed
        assert freeze["id"] not in {f["id"] for f in json.loads(listed.stdout)}

        after = await deploy_until(stack, service, "3.2.0", expect_exit=0)
        await finish(stack, after["number"], "succeeded")
    return {("incident", incident["id"]), ("freeze", freeze["id"]), ("change", change["id"]),
            ("deployment", prevented["id"]), ("deployment", hotfix["id"]),
            ("deployment", after["id"])}


# --- scenario 4 ---------------------------------------------------------------------------


async def suspect_confirmed(stack: Stack) -> set[tuple[str, str]]:
    """A succeeded deployment becomes a suspect of a later incident on its service;
    confirming it raises the change failure rate."""
    stack.use_gate_mode("receipt")
    service = unique_service("s4")
    deployment = await deploy(stack, service, "7.0.0")
    await finish(stack, deployment["number"], "succeeded")
    async with Http(stack) as http:
        async def dora_counts_it() -> Any:
            m = await dora(http, service)
            return m if m["change_failure_rate"]["sample_size"] == 1 else None

        before = await until(stack, dora_counts_it, "DORA to count the succeeded deployment")
        assert before["change_failure_rate"]["value"] == 0
        assert before["change_failure_rate"]["bucket"] == "elite"
        # The commit the pipeline named was made three hours before the deployment.
        lead = before["lead_time"]
        assert lead["sample_size"] == 1 and lead["unit"] == "hours"
        assert 2.9 < lead["value"] < 3.5

        incident = await http.call("POST", "incidents", "/api/v1/incidents", role="practitioner",
                                   json={"title": "Slow searches", "service": service,
                                         "environment": "production", "impact": 2,
                                         "urgency": 2})

        async def suspected() -> Any:
            body = await http.get("incidents", f"/api/v1/incidents/{incident['id']}/suspects")
            return [s for s in body["items"] if s["id"] == deployment["id"]]

        (suspect,) = await until(stack, suspected, "the deployment among the incident's suspects")
        assert suspect["kind"] == "deployment"

        confirmed = await http.call("POST", "incidents",
                                    f"/api/v1/incidents/{incident['id']}/cause",
                                    role="manager", expect=200,
                                    json={"deployment_id": deployment["id"]})
        assert confirmed["cause_deployment_id"] == deployment["id"]

        async def failure_counted() -> Any:
            m = await dora(http, service)
            return m if m["change_failure_rate"]["value"] == 1.0 else None

        after = await until(stack, failure_counted,
                            "the confirmed cause in the change failure rate")
        assert after["change_failure_rate"]["sample_size"] == 1
        assert after["change_failure_rate"]["bucket"] == "low"
        changes = await http.items("changes", "/api/v1/changes", service=service)
    return {("deployment", deployment["id"]), ("incident", incident["id"]),
            *{("change", c["id"]) for c in changes}}


# --- scenario 5 ---------------------------------------------------------------------------


async def killed_and_restarted(stack: Stack) -> set[tuple[str, str]]:
    """Services die (SIGKILL) mid-scenario and come back: the incidents service before a failed
    deployment's event reaches it, the deployments service right after recording the failure
    (its event perhaps still in its outbox). The incident is opened exactly once, and the
    stack goes on working."""
    stack.use_gate_mode("receipt")
    service = unique_service("s5")
    deployment = await deploy(stack, service, "5.0.0")
    stack.kill("incidents")
    try:
        await finish(stack, deployment["number"], "failed")
        stack.kill("deployments")
    finally:
        stack.restart("deployments")
        stack.restart("incidents")
    async with Http(stack) as http:
        async def opened() -> Any:
            return await http.items("incidents", "/api/v1/incidents", service=service)

        (incident,) = await until(stack, opened, "the incident after the restart")
        assert incident["cause_deployment_id"] == deployment["id"]

        await http.call("POST", "incidents", f"/api/v1/incidents/{incident['id']}/transitions",
                        role="practitioner", expect=200,
                        json={"to": "resolved", "resolution_code": "rolled_back",
                              "resolution_notes": "Rolled back"})

        async def recovered() -> Any:
            m = await dora(http, service)
            return m if m["failed_deployment_recovery_time"]["sample_size"] == 1 else None

        metrics = await until(stack, recovered, "DORA recovery after the restarts")
        # The failure was counted once across the kills: one failed attempt (it never served).
        assert metrics["failed_deployment_attempts"]["value"] == 1
        assert metrics["change_failure_rate"]["sample_size"] == 0
        assert len(await opened()) == 1
        changes = await http.items("changes", "/api/v1/changes", service=service)
    return {("deployment", deployment["id"]), ("incident", incident["id"]),
            *{("change", c["id"]) for c in changes}}


# --- scenario 7 ---------------------------------------------------------------------------


def gate_codes(deployment: dict[str, Any]) -> list[str]:
    return [r["code"] for r in deployment["gate"]["reasons"]]


async def recovery_through_the_freeze(stack: Stack) -> set[tuple[str, str]]:
    """A failed production deploy of a tier-1 service opens a P2 incident that freezes it; the
    pipeline's immediate redeploy of the previous version passes that freeze with an emergency
    change recorded for it, its success mitigates the incident, and DORA's failed deployment
    recovery time is exactly the time from the failure to that success. Any other deploy is
    still held."""
    stack.use_gate_mode("receipt")
    service = unique_service("s7")
    async with Http(stack) as http:
        await http.call("POST", "catalog", "/api/v1/services", role="owner",
                        json={"name": service, "tier": 1})

        async def catalog_known() -> Any:  # the incidents service's projection of it
            return await http.get("catalog", f"/api/v1/services/{service}")

        await until(stack, catalog_known, "the catalog to know the service")
        good = await deploy(stack, service, "1.0.0")
        good = await finish(stack, good["number"], "succeeded")

        bad = await deploy(stack, service, "1.1.0")
        failed = await finish(stack, bad["number"], "failed")

        async def frozen() -> Any:
            items = await http.items("incidents", "/api/v1/incidents", service=service)
            if not items:
                return None
            freezes = await http.items("changes", "/api/v1/freezes", service=service)
            mine = [f for f in freezes if f.get("incident_id") == items[0]["id"]
                    and f["status"] == "active"]
            return (items[0], mine[0]) if mine else None

        incident, freeze = await until(stack, frozen, "the failed deploy's incident to freeze")
        assert (incident["priority"], incident["major"]) == (2, True)  # tier 1 -> P2
        assert incident["cause_deployment_id"] == failed["id"]

        # The pipeline redeploys the previous version at once: the gate lets it through the
        # freeze (a retry only while the gate has not yet seen the incident).
        for _ in range(40):
            redeploy = await deploy(stack, service, "1.0.0", "--no-begin")
            if "emergency_change_recorded" in gate_codes(redeploy):
                break
            assert redeploy["gate"]["decision"] == "allowed", redeploy
            await finish(stack, redeploy["number"], "canceled")
        else:
            raise AssertionError("the gate never saw the failure's incident")
        assert redeploy["gate"]["decision"] == "allowed"
        assert gate_codes(redeploy)[:2] == ["recovery", "emergency_change_recorded"]
        assert redeploy["recovery"] == {"kind": "rollback", "deployment_id": failed["id"],
                                        "incident_id": incident["id"]}
        assert redeploy["rework"] is True

        async def emergency_change() -> Any:
            items = await http.items("changes", "/api/v1/changes", service=service)
            mine = [c for c in items if c["deployment_id"] == redeploy["id"]]
            return mine[0] if mine and mine[0]["status"] == "scheduled" else None

        change = await until(stack, emergency_change, "the recovery's emergency change")
        assert (change["type"], change["incident_id"]) == ("emergency", incident["id"])

        recovered = await finish(stack, redeploy["number"], "succeeded")

        async def mitigated() -> Any:
            body = await http.get("incidents", f"/api/v1/incidents/{incident['id']}")
            return body if body["mitigated_at"] else None

        incident = await until(stack, mitigated, "the incident mitigated by the recovery")
        assert parse(incident["mitigated_at"]) == parse(recovered["finished_at"])

        async def recovery_known() -> Any:
            m = await dora(http, service)
            return m if m["failed_deployment_recovery_time"]["sample_size"] == 1 else None

        metrics = await until(stack, recovery_known, "DORA's recovery time of the failure")
        expected_h = (parse(recovered["finished_at"])
                      - parse(failed["finished_at"])).total_seconds() / 3600
        assert abs(metrics["failed_deployment_recovery_time"]["value"] - expected_h) < 1e-9
        # The failed attempt never served: beside the rate, not in it; the rollback is rework.
        assert metrics["failed_deployment_attempts"]["value"] == 1
        assert metrics["change_failure_rate"]["value"] == 0.0
        assert metrics["change_failure_rate"]["sample_size"] == 2
        assert metrics["deployment_rework_rate"]["value"] == 0.5

        # The incident is still open (mitigated, not resolved): any other deploy is held.
        held = await deploy(stack, service, "1.2.0", expect_exit=EXIT_PREVENTED)
        assert gate_codes(held) == ["freeze_active"]

        async def change_in_review() -> Any:
            body = await http.get("changes", f"/api/v1/changes/{change['id']}")
            return body if body["status"] == "review" else None

        await until(stack, change_in_review, "the emergency change to follow its deployment")
    return {("deployment", good["id"]), ("deployment", failed["id"]),
            ("deployment", redeploy["id"]), ("deployment", held["id"]),
            ("incident", incident["id"]), ("freeze", freeze["id"]), ("change", change["id"])}


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))



# --- scenario 8 ---------------------------------------------------------------------------


async def review_closes_itself(stack: Stack) -> set[tuple[str, str]]:
    """A resolved P1 gets its post-incident review; an action item naming the emergency
    change closes itself when the change's deployment succeeds in production; the review
    exports as Markdown."""
    stack.use_gate_mode("receipt")
    service = unique_service("s8")
    practitioner = stack.cli_env("practitioner", "pat-practitioner")
    created = await cli(practitioner, "incident", "create", "--title", "Card vault timeouts",
                        "--service", service, "--impact", "1", "--urgency", "1", "--json")
    assert created.code == 0, created
    incident = json.loads(created.stdout)
    acked = await cli(practitioner, "incident", "ack", incident["number"])
    assert acked.code == 0, acked
    fix = await cli(practitioner, "change", "create", "--type", "emergency", "--title",
                    "Raise the vault client timeout", "--service", service, "--incident",
                    incident["id"], "--json")
    assert fix.code == 0, fix
    change = json.loads(fix.stdout)
    moved = await cli(practitioner, "change", "transition", change["number"], "authorize")
    assert moved.code == 0, moved
    approved = await cli(stack.cli_env("manager", "carol-manager"), "change", "approve",
                         change["number"], "--json")
    assert json.loads(approved.stdout)["status"] == "scheduled", approved
    resolved = await cli(practitioner, "incident", "resolve", incident["number"],
                         "--code", "solution_provided", "--notes", "Vault restarted")
    assert resolved.code == 0, resolved

    viewer = stack.cli_env("viewer")

    async def reviewed() -> Any:
        shown = await cli(viewer, "review", "show", incident["number"], "--json")
        return json.loads(shown.stdout) if shown.code == 0 else None

    review = await until(stack, reviewed, "the P1's post-incident review")
    assert review["status"] == "open" and review["incident_number"] == incident["number"]
    assert {"response", "mitigation"} <= {s["stage"] for s in review["stream"]}
    added = await cli(practitioner, "review", "action", "add", review["number"],
                      "Ship the longer vault timeout", "--change", change["number"], "--json")
    assert added.code == 0, added
    action = json.loads(added.stdout)
    assert action["status"] == "open" and action["change_number"] == change["number"]

    hotfix = await deploy_until(stack, service, "4.0.1", "--change", change["number"],
                                expect_exit=0)
    await finish(stack, hotfix["number"], "succeeded")

    async def closed() -> Any:
        listed = await cli(viewer, "review", "action", "list", review["number"], "--json")
        items = json.loads(listed.stdout) if listed.code == 0 else []
        return items[0] if items and items[0]["status"] == "closed" else None

    item = await until(stack, closed, "the action item to close itself on the fix's deploy")
    assert item["closed_by_deployment_number"] == hotfix["number"]
    exported = await cli(viewer, "review", "export", review["number"])
    assert exported.code == 0, exported
    assert f"closed by deployment {hotfix['number']}" in exported.stdout
    return {("incident", incident["id"]), ("change", change["id"]),
            ("deployment", hotfix["id"])}
