"""Who owns what, over real processes and from the CLI alone (the README's third story):
``tandem catalog import`` of Backstage descriptors (twice; a bad file refused naming document
and field), a tier-1 change approved by both teams, its failed deploy opening an incident for
the operations team, a pipeline's self-authorization refused, and an unknown service
registering by itself."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from e2e.scenarios import EXIT_PREVENTED, Http, iso, until
from e2e.stack import Stack, cli
from tandem.db import utcnow

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def write_descriptors(directory: Path, service: str, dev: str, ops: str) -> Path:
    """``teams.yaml`` and ``<service>.yaml``, as a repository's catalog-info files are."""
    directory.mkdir(parents=True)
    (directory / "teams.yaml").write_text(f"""\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: {dev}
  title: Payments developers
spec:
  type: team
  members: [user:default/dana-dev, dave-dev]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: {ops}
  title: Payments operations
spec:
  type: team
  members: [olga-ops]
""")
    (directory / f"{service}.yaml").write_text(f"""\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {service}
  title: Payments API
  annotations:
    tandem.dev/tier: "1"
    tandem.dev/operations-team: {ops}
    tandem.dev/runbook: https://runbooks.example.com/{service}
    github.com/project-slug: acme/{service}
spec:
  type: service
  lifecycle: production
  owner: group:{dev}
""")
    return directory


async def json_of(env: dict[str, str], *args: str, code: int = 0) -> Any:
    result = await cli(env, *args, "--json")
    assert result.code == code, result
    return json.loads(result.stdout) if result.stdout.strip() else None


async def test_who_owns_what_from_the_command_line(stack: Stack, tmp_path: Path) -> None:
    stack.use_gate_mode("approval")
    tag = uuid.uuid4().hex[:6]
    service, dev, ops = f"payments-{tag}", f"payments-dev-{tag}", f"payments-ops-{tag}"
    owner = stack.cli_env("owner", "olivia-owner")
    viewer = stack.cli_env("viewer")
    practitioner = stack.cli_env("practitioner", "pat")
    pipeline = stack.cli_env("pipeline", "ci-bot")

    # 1. Import the descriptors; importing them again changes nothing.
    directory = write_descriptors(tmp_path / "catalog", service, dev, ops)
    first = await cli(owner, "catalog", "import", str(directory))
    assert first.code == 0, first
    assert f"created services {service}" in first.stdout
    assert f"created teams {dev}, {ops}" in first.stdout
    again = await cli(owner, "catalog", "import", str(directory))
    assert again.code == 0, again
    assert again.stdout.count("nothing changed") == 2, again

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {{name: x-{tag}}}"
                   f"\n---\napiVersion: backstage.io/v1alpha1\nkind: Component\n"
                   f"metadata: {{name: Bad_Name}}\nspec: {{lifecycle: production, owner: t}}\n")
    refused = await cli(owner, "catalog", "import", str(bad))
    assert refused.code == 1, refused
    assert "document 2 (Bad_Name): metadata.name: must be lowercase" in refused.stderr
    assert (await cli(viewer, "catalog", "team", "show", f"x-{tag}")).code == 1

    shown = await cli(viewer, "catalog", "service", "show", service)
    assert shown.code == 0, shown
    lines = dict(line.split("  ", 1) for line in shown.stdout.splitlines() if "  " in line)
    assert lines["owner team"].strip() == dev and lines["operations team"].strip() == ops
    assert lines["tier"].strip() == "1"

    # 2. A tier-1 change waits in authorize for the operations team's manager.
    start = iso(utcnow())
    change = await json_of(practitioner, "change", "create", "--type", "normal", "--service",
                           service, "--title", "Rotate the card vault keys", "--start", start,
                           "--end", "+2h")
    async with Http(stack) as http:
        async def ruled_by_ownership() -> Any:
            got = await http.get("changes", f"/api/v1/changes/{change['id']}")
            return got if got["approval_rule"]["kind"] == "ownership" else None

        await until(stack, ruled_by_ownership, "the changes service to know the catalog")
    for to in ("assess", "authorize"):
        await json_of(practitioner, "change", "transition", change["number"], to)
    by_dev = await cli(stack.cli_env("manager", "dana-dev"), "change", "approve",
                       change["number"])
    assert by_dev.code == 0, by_dev
    assert "status         authorize" in by_dev.stdout
    assert f"{ops} (waiting)" in by_dev.stdout
    outsider = await cli(stack.cli_env("manager", "carol"), "change", "approve",
                         change["number"])
    assert outsider.code == 1 and "error: 403" in outsider.stderr
    by_ops = await json_of(stack.cli_env("manager", "olga-ops"), "change", "approve",
                           change["number"])
    assert by_ops["status"] == "scheduled"

    # 3. Its deploy fails: the incident goes to the operations team.
    deployed = await json_of(pipeline, "deploy", "start", "--service", service, "--version",
                             "4.2.0", "--change", change["number"], "--commit",
                             f"{uuid.uuid4().hex[:12]}@{iso(utcnow())}")
    assert deployed["gate"]["decision"] == "allowed"
    await json_of(pipeline, "deploy", "finish", deployed["number"], "--status", "failed")
    async with Http(stack) as http:
        async def opened() -> Any:
            return await http.items("incidents", "/api/v1/incidents", service=service)

        [incident] = await until(stack, opened, "an incident for the failed deploy")
    assert incident["assignment_group"] == ops
    listed = await cli(viewer, "incident", "list", "--group", ops)
    assert listed.code == 0 and incident["number"] in listed.stdout, listed

    # 4. A pipeline cannot authorize its own deploy.
    other = f"shop-{tag}"
    own = await cli(pipeline, "change", "create", "--type", "standard", "--service", other,
                    "--title", "Ship it")
    assert own.code == 1 and "standard change template" in own.stderr, own
    outside = await json_of(practitioner, "change", "create", "--type", "standard",
                            "--service", other, "--title", "Ship it")
    await json_of(pipeline, "change", "transition", outside["number"], "scheduled")
    # The gate reads the change from its own projection: until that has the change
    # scheduled, a deploy naming it waits (exit 4), and the pipeline asks again.
    for attempt in range(10):
        prevented = await cli(pipeline, "deploy", "start", "--service", other, "--version",
                              f"1.0.{attempt}", "--change", outside["number"], "--wait", "5",
                              "--json")
        if prevented.code == EXIT_PREVENTED:
            break
    assert prevented.code == EXIT_PREVENTED, prevented
    assert "change_outside_template" in prevented.stdout
    await json_of(practitioner, "change", "transition", outside["number"], "canceled")
    template = await json_of(owner, "change", "template", "create", "--service", other,
                             "--title", "Ship the storefront", "--max-window", "30m")
    templated = await json_of(pipeline, "change", "create", "--type", "standard",
                              "--service", other, "--template", template["number"])
    assert templated["template_id"] == template["id"]
    await json_of(pipeline, "change", "transition", templated["number"], "scheduled")
    allowed = await cli(pipeline, "deploy", "start", "--service", other, "--version", "1.1",
                        "--change", templated["number"], "--wait", "30", "--json")
    assert allowed.code == 0, allowed

    # 5. A service nobody wrote down registers by itself, unowned.
    legacy = f"legacy-{tag}"
    await json_of(pipeline, "deploy", "start", "--service", legacy, "--version", "0.9",
                  "--environment", "staging")
    async with Http(stack) as http:
        async def registered() -> Any:
            r = await http.client.get(f"{stack.url('catalog')}/api/v1/services/{legacy}",
                                      headers=stack.headers("viewer"))
            return r.json() if r.status_code == 200 else None

        found = await until(stack, registered, "the unknown service to register")
    assert (found["source"], found["unowned"]) == ("discovered", True)
    unowned = await cli(viewer, "catalog", "service", "list", "--unowned")
    assert unowned.code == 0, unowned
    row = next(line for line in unowned.stdout.splitlines() if line.startswith(legacy))
    assert "(unowned)" in row
