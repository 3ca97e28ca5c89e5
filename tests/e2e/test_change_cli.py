"""``tandem change`` and ``tandem freeze`` against the whole stack: output and errors."""

from __future__ import annotations

import json
import uuid

import pytest
from typer.testing import CliRunner, Result

from e2e.stack import Stack
from tandem_cli import build_app

pytestmark = pytest.mark.e2e
APP = build_app()


def tandem(stack: Stack, role: str, *args: str, sub: str | None = None) -> Result:
    return CliRunner().invoke(APP, list(args), env=stack.cli_env(role, sub))


def service() -> str:
    return f"chg-{uuid.uuid4().hex[:6]}"


def test_freeze_create_list_and_end(stack: Stack) -> None:
    name = service()
    created = tandem(stack, "manager", "freeze", "create", "--service", name, "--ends", "+2h",
                     "--reason", "Quarter close", "--json")
    assert created.exit_code == 0, created.output
    freeze = json.loads(created.stdout)
    assert freeze["status"] == "active" and freeze["services"] == [name]

    listed = tandem(stack, "viewer", "freeze", "list", "--service", name)
    assert listed.exit_code == 0, listed.output
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:4] == ["NUMBER", "STATUS", "SERVICES", "SOURCE"]
    assert [r.split()[:4] for r in rows] == [[freeze["number"], "active", name, "manual"]]

    ended = tandem(stack, "manager", "freeze", "end", freeze["number"], "--reason", "done",
                   "--json")
    assert ended.exit_code == 0, ended.output
    assert json.loads(ended.stdout)["status"] == "ended"
    after = tandem(stack, "viewer", "freeze", "list", "--service", name)
    assert after.stdout.strip() == "no freezes"


def test_practitioner_may_not_freeze(stack: Stack) -> None:
    result = tandem(stack, "practitioner", "freeze", "create", "--ends", "+1h", "--reason", "x")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 403")


def test_normal_change_assessed_then_rejected_goes_back_to_new(stack: Stack) -> None:
    name = service()
    created = tandem(stack, "practitioner", "change", "create", "--type", "normal", "--title",
                     "Resize the database", "--service", name, "--start", "+1h", "--end", "+3h",
                     "--json", sub="pat")
    assert created.exit_code == 0, created.output
    change = json.loads(created.stdout)
    assert change["status"] == "new"

    moved = tandem(stack, "practitioner", "change", "transition", change["number"], "assess",
                   sub="pat")
    assert moved.exit_code == 0, moved.output
    assert "status         assess" in moved.stdout

    own = tandem(stack, "manager", "change", "approve", change["number"], sub="pat")
    assert own.exit_code == 1 and own.stderr.startswith("error: 403")

    rejected = tandem(stack, "manager", "change", "reject", change["number"], "--comment",
                      "Not during the sale", "--json", sub="carol")
    assert rejected.exit_code == 0, rejected.output
    assert json.loads(rejected.stdout)["status"] == "new"

    listed = tandem(stack, "viewer", "change", "list", "--service", name)
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[1].split()[:3] == [change["number"], "normal", "new"]


def test_illegal_change_move_lists_the_allowed_ones(stack: Stack) -> None:
    created = tandem(stack, "practitioner", "change", "create", "--title", "x", "--service",
                     service(), "--json")
    number = json.loads(created.stdout)["number"]
    result = tandem(stack, "practitioner", "change", "transition", number, "review")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 409")
    assert "(allowed: " in result.stderr


def test_change_show_names_its_incident_by_number(stack: Stack) -> None:
    name = service()
    opened = tandem(stack, "practitioner", "incident", "create", "--title", "Checkout down",
                    "--service", name, "--impact", "1", "--urgency", "1", "--json")
    assert opened.exit_code == 0, opened.output
    incident = json.loads(opened.stdout)
    created = tandem(stack, "practitioner", "change", "create", "--type", "emergency",
                     "--title", "Restart the pool", "--service", name, "--incident",
                     incident["number"], "--json")
    assert created.exit_code == 0, created.output
    change = json.loads(created.stdout)
    assert change["incident_id"] == incident["id"]  # machines keep the id

    shown = tandem(stack, "viewer", "change", "show", change["number"])
    assert shown.exit_code == 0, shown.output
    fields = dict(line.split(None, 1) for line in shown.stdout.splitlines()
                  if len(line.split(None, 1)) == 2)
    assert fields["incident"] == incident["number"]
    assert incident["id"] not in shown.stdout
