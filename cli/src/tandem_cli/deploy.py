"""``tandem deploy``: what a pipeline calls around a deployment.

``start`` records the deployment and asks the gate (exit 0 allowed, 3 prevented, 4 still
awaiting), ``finish`` reports the outcome, ``gate`` asks again.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import shutil
import subprocess
import textwrap
import threading
import time
from typing import Annotated, Any

import typer

from tandem_cli.api import (
    Api,
    CommandError,
    JsonOption,
    command_group,
    emit,
    fail,
    iso,
    list_all,
    parse_when,
    reporting,
    resolve_id,
    stderr_is_terminal,
    table,
    transition,
)

EXIT_PREVENTED = 3
EXIT_AWAITING = 4
EXIT_BY_DECISION = {"allowed": 0, "prevented": EXIT_PREVENTED, "awaiting": EXIT_AWAITING}
#: The service holds one long poll for at most this long; longer waits poll again.
LONG_POLL_S = 60

deploy_app = command_group("Deployments for pipelines: start (gate), finish, gate.")

Ref = Annotated[str, typer.Argument(help="Deployment number (DEP0000042) or id")]
COLUMNS = [("NUMBER", "number"), ("STATUS", "status"), ("GATE", "gate.decision"),
           ("SERVICE", "service"), ("ENV", "environment"), ("VERSION", "software_version"),
           ("CREATED", "created_at")]


def idempotency_key(pipeline_id: str, service: str, environment: str, version: str) -> str:
    """The key a retried CI job sends again, so the retry replays instead of deploying twice."""
    digest = hashlib.sha256(f"{pipeline_id}\n{service}\n{environment}\n{version}".encode())
    return f"deploy-{digest.hexdigest()[:40]}"


def _reason_text(reason: Any) -> str:
    if isinstance(reason, dict):
        return str(reason.get("message") or reason.get("code") or reason)
    return str(reason)


def gate_lines(gate: dict[str, Any]) -> list[str]:
    """``allowed (change CHG...)`` and one ``- reason`` line per reason."""
    head = str(gate.get("decision", "unknown"))
    extras = [f"{label} {gate[k]}" for k, label in (("mode", "mode"), ("change_id", "change"))
              if gate.get(k)]
    if extras:
        head += f" ({', '.join(extras)})"
    return [head, *(f"  - {_reason_text(r)}" for r in gate.get("reasons") or [])]


def _summary(deployment: dict[str, Any]) -> str:
    gate = deployment.get("gate") or {}
    lines = [f"{deployment.get('number')}  {deployment.get('service')} "
             f"{deployment.get('software_version')} -> {deployment.get('environment')}",
             f"id      {deployment.get('id')}",
             f"status  {deployment.get('status')}"]
    if gate:
        first, *rest = gate_lines(gate)
        lines += [f"gate    {first}", *rest]
    return "\n".join(lines)


class Spinner:
    """A spinner while a long poll is held (terminals only): the gate's reasons are printed
    above it whenever they change, wrapped to the terminal, and the spinner line stays short."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def started_thread(self) -> bool:
        return self._thread.is_alive() or self._stop.is_set()

    def __enter__(self) -> Spinner:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        typer.echo("\r\033[K", err=True, nl=False)

    def say(self, reasons: list[str]) -> None:
        """Print the gate's reasons as lines of their own, above the spinner."""
        width = max(40, shutil.get_terminal_size().columns - 1)
        lines = [f"{self.label} awaiting:"]
        for reason in reasons or ["-"]:
            lines += textwrap.wrap(reason, width, initial_indent="  - ",
                                   subsequent_indent="    ")
        with self._lock:
            typer.echo("\r\033[K" + "\n".join(lines), err=True)

    def _run(self) -> None:
        for frame in itertools.cycle(self.FRAMES):
            elapsed = int(time.monotonic() - self.started)
            with self._lock:
                typer.echo(f"\r\033[K{frame} {self.label} awaiting the gate, {elapsed}s",
                           err=True, nl=False)
            if self._stop.wait(0.1):
                return


def await_gate(api: Api, deployment: dict[str, Any], wait: float) -> dict[str, Any]:
    """The gate once it leaves ``awaiting`` or ``wait`` seconds have passed, by long polls."""
    gate: dict[str, Any] = deployment.get("gate") or {}
    if gate.get("decision") != "awaiting" or wait <= 0:
        return gate
    deadline = time.monotonic() + wait
    label = str(deployment.get("number") or deployment.get("id"))
    spinner = Spinner(label) if stderr_is_terminal() else None
    last_reasons: str | None = None
    try:
        while gate.get("decision") == "awaiting":
            reason_list = [_reason_text(r) for r in gate.get("reasons") or []]
            reasons = "; ".join(reason_list) or "-"
            if spinner and reasons != last_reasons:
                spinner.say(reason_list)
                if not spinner.started_thread:
                    spinner.__enter__()
            elif not spinner and reasons != last_reasons:
                typer.echo(f"{label} awaiting: {reasons}", err=True)
            last_reasons = reasons
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            hold = max(1, min(LONG_POLL_S, math.ceil(remaining)))
            gate = api.get(f"/api/v1/deployments/{deployment['id']}/gate",
                           params={"wait": hold}, timeout=hold + 15)
    finally:
        if spinner and spinner.started_thread:
            spinner.__exit__()
    return gate


def _commit_time(sha: str) -> str:
    """The commit's time from the local git repository (a retry must send the same body)."""
    try:
        out = subprocess.run(["git", "show", "-s", "--format=%cI", sha], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if not out:
        raise typer.BadParameter(f"{sha}: not a commit of the current git repository; "
                                 "give its time as SHA@COMMITTED_AT")
    return out


def _parse_commit(value: str) -> dict[str, str]:
    sha, _, when = value.partition("@")
    if not sha:
        raise typer.BadParameter(f"{value!r}: expected SHA or SHA@COMMITTED_AT")
    return {"sha": sha, "committed_at": iso(parse_when(when or _commit_time(sha)))}


@deploy_app.command("start")
def start(
    service: Annotated[str, typer.Option(help="The service being deployed")],
    version: Annotated[str, typer.Option(help="The version being deployed")],
    environment: Annotated[str, typer.Option(help="production, staging, testing, development")]
    = "production",
    artifact: Annotated[str | None, typer.Option(help="Package URL, e.g. pkg:oci/api@sha256:..")]
    = None,
    ref: Annotated[str | None, typer.Option(help="Git ref")] = None,
    commit: Annotated[list[str] | None, typer.Option(
        help="A commit it ships: SHA@COMMITTED_AT (RFC 3339), or SHA to read its time from "
        "git; repeat for more")] = None,
    pipeline_id: Annotated[str | None, typer.Option(envvar="TANDEM_PIPELINE_ID",
                                                    help="The CI pipeline's id")] = None,
    run_url: Annotated[str | None, typer.Option(envvar="TANDEM_PIPELINE_URL",
                                                help="Link to the CI run")] = None,
    change: Annotated[str | None, typer.Option(
        help="The change (number or id) this deployment carries")] = None,
    wait: Annotated[float, typer.Option(
        help="Seconds to wait while the gate is awaiting (approval)")] = 0,
    begin: Annotated[bool, typer.Option(
        help="Mark the deployment in progress once allowed")] = True,
    key: Annotated[str | None, typer.Option(
        "--idempotency-key",
        help="Default: derived from pipeline id, service, environment and version")] = None,
    as_json: JsonOption = False,
) -> None:
    """Record a deployment and ask its gate: exit 0 allowed, 3 prevented, 4 still awaiting."""
    body: dict[str, Any] = {"service": service, "environment": environment, "version": version,
                            "commits": [_parse_commit(c) for c in commit or []]}
    if artifact:
        body["artifact"] = artifact
    if ref:
        body["ref"] = ref
    if pipeline_id:
        body["pipeline"] = {"id": pipeline_id, "run_url": run_url}
    key = key or (idempotency_key(pipeline_id, service, environment, version)
                  if pipeline_id else None)
    headers = {"Idempotency-Key": key} if key else None
    with reporting(as_json), Api("deployments") as api:
        if change:
            body["change_id"] = resolve_id("changes", "changes", change)
        # With a key, a lost answer or a restarting service is retried: the retry replays.
        deployment = api.post("/api/v1/deployments", body, headers=headers,
                              attempts=4 if key else 1)
        gate = await_gate(api, deployment, wait)
        decision = gate.get("decision")
        if decision == "allowed" and begin:
            current = api.get(f"/api/v1/deployments/{deployment['id']}")
            # A retried job finds its deployment already started; nothing to move then.
            if current.get("status") == "requested":
                current = transition(api, "deployments", deployment["id"], "in_progress",
                                     "deployment started by the pipeline")
            deployment = current
        deployment = {**deployment, "gate": gate}
    emit(deployment, as_json, _summary(deployment))
    if decision not in EXIT_BY_DECISION:
        fail(f"the gate answered an unknown decision {decision!r}")
    raise typer.Exit(EXIT_BY_DECISION[decision])


@deploy_app.command("finish")
def finish(
    ref: Ref,
    status: Annotated[str, typer.Option(help="succeeded, failed, rolled_back or canceled")],
    reason: Annotated[str | None, typer.Option(help="Why, for the record")] = None,
    as_json: JsonOption = False,
) -> None:
    """Report how a deployment ended."""
    if status not in {"succeeded", "failed", "rolled_back", "canceled"}:
        fail(f"--status {status!r}: use succeeded, failed, rolled_back or canceled", exit_code=2)
    with reporting(as_json), Api("deployments") as api:
        current = api.get(f"/api/v1/deployments/{ref}", attempts=4)
        if current.get("status") == status:
            # A retried report step: the outcome is already recorded.
            emit(current, as_json, _summary(current))
            return
        # A pipeline that started with --no-begin still reports the outcome in one call.
        if current.get("status") == "requested" and status in {"succeeded", "failed"}:
            if (current.get("gate") or {}).get("decision") != "allowed":
                raise CommandError(f"{current.get('number')} was not allowed by its gate "
                                   f"({(current.get('gate') or {}).get('decision')}); "
                                   "it cannot have run")
            transition(api, "deployments", current["id"], "in_progress", reason)
        deployment = transition(api, "deployments", current["id"], status, reason)
    emit(deployment, as_json, _summary(deployment))


@deploy_app.command("gate")
def gate(
    ref: Ref,
    wait: Annotated[float, typer.Option(help="Seconds to wait while awaiting")] = 0,
    begin: Annotated[bool, typer.Option(
        help="Mark the deployment in progress once allowed, as start does")] = True,
    as_json: JsonOption = False,
) -> None:
    """Show a deployment's gate: exit 0 allowed, 3 prevented, 4 still awaiting."""
    with reporting(as_json), Api("deployments") as api:
        deployment = api.get(f"/api/v1/deployments/{ref}")
        decision_gate = await_gate(api, deployment, wait)
        if (decision_gate.get("decision") == "allowed" and begin
                and deployment.get("status") == "requested"):
            # What start would have done had the gate allowed it at once; a repeated call
            # finds the deployment already started.
            current = api.get(f"/api/v1/deployments/{deployment['id']}")
            if current.get("status") == "requested":
                transition(api, "deployments", deployment["id"], "in_progress",
                           "deployment started by the pipeline")
    emit(decision_gate, as_json, "\n".join(gate_lines(decision_gate)))
    raise typer.Exit(EXIT_BY_DECISION.get(str(decision_gate.get("decision")), 1))


@deploy_app.command("show")
def show(ref: Ref, as_json: JsonOption = False) -> None:
    """Show one deployment with its gate."""
    with reporting(as_json), Api("deployments") as api:
        deployment = api.get(f"/api/v1/deployments/{ref}")
    emit(deployment, as_json, _summary(deployment))


@deploy_app.command("list")
def list_deployments(
    service: Annotated[str | None, typer.Option(help="Only this service")] = None,
    environment: Annotated[str | None, typer.Option(help="production, staging, ...")] = None,
    status: Annotated[str | None, typer.Option(help="requested, in_progress, ...")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List deployments."""
    with reporting(as_json), Api("deployments") as api:
        items = list_all(api, "/api/v1/deployments",
                         {"service": service, "environment": environment, "status": status},
                         limit)
    emit(items, as_json, table(items, COLUMNS, empty="no deployments"))
