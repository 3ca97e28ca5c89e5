"""``tandem deploy`` as a pipeline runs it, against the whole stack: exit codes and output."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner, Result

from e2e.stack import Stack
from tandem_cli import build_app

pytestmark = pytest.mark.e2e
APP = build_app()
COMMIT = "0123abcd@2026-01-05T09:00:00Z"


def tandem(stack: Stack, role: str, *args: str) -> Result:
    stack.use_gate_mode("receipt")
    return CliRunner().invoke(APP, list(args), env=stack.cli_env(role))


def service() -> str:
    return f"cli-{uuid.uuid4().hex[:6]}"


def test_allowed_deploy_starts_and_finishes(stack: Stack) -> None:
    name = service()
    started = tandem(stack, "pipeline", "deploy", "start", "--service", name, "--version", "1.0",
                     "--environment", "staging", "--commit", COMMIT)
    assert started.exit_code == 0, started.output
    lines = started.stdout.splitlines()
    assert lines[0].startswith("DEP") and lines[0].endswith(f"{name} 1.0 -> staging")
    assert "status  in_progress" in lines
    assert any(line.startswith("gate    allowed") for line in lines)

    number = lines[0].split()[0]
    finished = tandem(stack, "pipeline", "deploy", "finish", number, "--status", "succeeded",
                      "--json")
    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout)["status"] == "succeeded"
    # A retried report step changes nothing and succeeds.
    again = tandem(stack, "pipeline", "deploy", "finish", number, "--status", "succeeded")
    assert again.exit_code == 0, again.output


def test_no_begin_leaves_it_requested_and_finish_still_reports_in_one_call(stack: Stack) -> None:
    started = tandem(stack, "pipeline", "deploy", "start", "--service", service(), "--version",
                     "2.0", "--environment", "staging", "--commit", COMMIT, "--no-begin",
                     "--json")
    assert started.exit_code == 0, started.output
    deployment = json.loads(started.stdout)
    assert deployment["status"] == "requested"
    failed = tandem(stack, "pipeline", "deploy", "finish", deployment["id"], "--status",
                    "failed", "--json")
    assert failed.exit_code == 0, failed.output
    assert json.loads(failed.stdout)["status"] == "failed"


def test_prevented_deploy_exits_3_with_the_reasons(stack: Stack) -> None:
    name = service()
    opened = tandem(stack, "practitioner", "incident", "create", "--title", "Down",
                    "--service", name, "--impact", "1", "--urgency", "1")
    assert opened.exit_code == 0, opened.output

    def gate_of_a_new_deploy() -> Result:
        return tandem(stack, "pipeline", "deploy", "start", "--service", name, "--version",
                      uuid.uuid4().hex[:6], "--commit", COMMIT)

    result = gate_of_a_new_deploy()
    for _ in range(20):  # the gate learns of the incident from its topic, a moment later
        if result.exit_code != 0:
            break
        result = gate_of_a_new_deploy()
    assert result.exit_code == 3, result.output
    gate_line = next(line for line in result.stdout.splitlines() if line.startswith("gate"))
    assert "prevented" in gate_line
    assert any(line.startswith("  - ") for line in result.stdout.splitlines())


def test_pipeline_role_is_required_to_deploy(stack: Stack) -> None:
    result = tandem(stack, "practitioner", "deploy", "start", "--service", service(),
                    "--version", "1", "--commit", COMMIT)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 403")


def test_invalid_environment_is_a_problem_not_a_traceback(stack: Stack) -> None:
    result = tandem(stack, "pipeline", "deploy", "start", "--service", service(), "--version",
                    "1", "--environment", "moon", "--commit", COMMIT)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 422")
    assert "environment" in result.stderr


def test_finish_with_an_unknown_outcome_is_a_usage_error(stack: Stack) -> None:
    result = tandem(stack, "pipeline", "deploy", "finish", "DEP0000001", "--status", "great")
    assert result.exit_code == 2
