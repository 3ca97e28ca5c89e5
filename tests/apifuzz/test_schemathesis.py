"""Schemathesis over each service's OpenAPI document, as a person runs it (`schemathesis run`):
every check (no 5xx, responses and status codes as documented, schema-valid requests accepted
and schema-violating ones refused, `Allow` on 405, authentication enforced, ...) plus Tandem's
own (every refusal a problem), over the examples, coverage, fuzzing and stateful phases. The
exceptions a JSON Schema cannot state are in ``schemathesis.toml``, each with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from served import served

from tandem.auth import mint_token
from tandem_cli.broker import EmbeddedBroker

ROOT = Path(__file__).resolve().parents[2]
#: The role each service's writes need, so generated writes get past authorization.
ROLE = {"incidents": "owner", "changes": "owner", "deployments": "pipeline",
        "dashboard": "viewer", "catalog": "owner", "notifier": "manager"}


# A run takes one to two minutes on a quiet machine; the ceiling leaves room for a loaded one.
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("name", sorted(ROLE))
def test_schemathesis_finds_nothing(name: str, broker: EmbeddedBroker,
                                    tmp_path: Path) -> None:
    with served(name, broker, tmp_path) as (base, platform):
        token = mint_token(platform.jwt_secret, sub="fuzzer", role=ROLE[name],
                           ttl=timedelta(hours=1))
        command = [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file", str(ROOT / "schemathesis.toml"),
            "run", f"{base}/openapi.json", "--checks", "all",
            "--header", f"Authorization: Bearer {token}",
            "--max-examples", "15", "--seed", "20261202", "--no-color",
            "--request-timeout", "20", "--suppress-health-check", "all",
            "--exclude-path-regex", "/stream$",  # the board's SSE stream never ends by design
        ]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "problem_check",
               "PYTHONPATH": str(Path(__file__).parent)}
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1400,
                             cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-4000:]
    assert "Tested:" in run.stdout and " passed" in run.stdout, run.stdout[-4000:]
