"""``tandem token``: mint within the maximum lifetime, a key pair to mint with, and revoke,
the last against real catalog and incidents processes on the real broker."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from typer.testing import CliRunner, Result

from e2e.stack import Stack
from tandem_cli import build_app
from tandem_cli.broker import EmbeddedBroker

APP = build_app()


def invoke(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(APP, list(args), env=env, prog_name="tandem")


def test_mint_refuses_a_lifetime_past_the_maximum(tmp_path: Path) -> None:
    env = {"TANDEM_AUTH_SECRET": "s" * 40, "TANDEM_VAR_DIR": str(tmp_path)}
    ok = invoke("token", "mint", "--role", "viewer", "--sub", "vic", "--ttl", "90d", env=env)
    assert ok.exit_code == 0, ok.output
    assert jwt.decode(ok.stdout.strip(), options={"verify_signature": False})["jti"]
    long = invoke("token", "mint", "--role", "viewer", "--sub", "vic", "--ttl", "91d", env=env)
    assert long.exit_code == 2
    assert "TANDEM_AUTH_MAX_TOKEN_LIFETIME" in long.stderr
    shorter = invoke("token", "mint", "--role", "viewer", "--sub", "vic", "--ttl", "2h",
                     env={**env, "TANDEM_AUTH_MAX_TOKEN_LIFETIME": "1h"})
    assert shorter.exit_code == 2


def test_keygen_makes_a_key_pair_the_minter_signs_with(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "auth-key"
    made = invoke("token", "keygen", "--out", str(key), env={})
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    public = key.with_name("auth-key.pub")
    assert "PUBLIC KEY" in public.read_text()
    minted = invoke("token", "mint", "--role", "pipeline", "--sub", "ci",
                    env={"TANDEM_AUTH_SIGNING_KEY_FILE": str(key),
                         "TANDEM_VAR_DIR": str(tmp_path / "var")})
    assert minted.exit_code == 0, minted.output
    token = minted.stdout.strip()
    claims = jwt.decode(token, public.read_text(), algorithms=["EdDSA"])
    assert (claims["sub"], claims["role"]) == ("ci", "pipeline")
    # The minter used the key, never a secret: none was generated.
    assert not (tmp_path / "var" / "auth-secret").exists()
    again = invoke("token", "keygen", "--out", str(key), env={})
    assert again.exit_code == 2  # never overwrites a key


@pytest.fixture(scope="module")
def catalog_stack(broker: EmbeddedBroker,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(broker.bootstrap, tmp_path_factory.mktemp("revoke"),
                  services=["catalog", "incidents"])
    stack.start()
    yield stack
    stack.stop()


def test_revoke_stops_a_token_on_the_services_within_seconds(catalog_stack: Stack) -> None:
    stack = catalog_stack
    token = stack.token("practitioner", "pat")
    incidents = f"{stack.url('incidents')}/api/v1/incidents"
    assert httpx.get(incidents, headers={"Authorization": f"Bearer {token}"}).status_code == 200

    refused = invoke("token", "revoke", token, env=stack.cli_env("practitioner"))
    assert refused.exit_code == 1
    assert "403" in refused.stderr

    revoked = invoke("token", "revoke", token, "--reason", "pasted in a chat",
                     env=stack.cli_env("manager", "carol"))
    assert revoked.exit_code == 0, revoked.output
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    assert jti in revoked.stdout
    assert "REV" in revoked.stdout
    deadline = time.monotonic() + 5
    status = 200
    while time.monotonic() < deadline and status != 401:
        r = httpx.get(incidents, headers={"Authorization": f"Bearer {token}"})
        status = r.status_code
        time.sleep(0.05)
    assert status == 401
    assert r.json()["check"] == "revoked"
    # By jti alone, too.
    other = stack.token("viewer", "vic")
    other_jti = jwt.decode(other, options={"verify_signature": False})["jti"]
    by_jti = invoke("token", "revoke", other_jti, "--json", env=stack.cli_env("manager"))
    assert by_jti.exit_code == 0, by_jti.output
    assert other_jti in by_jti.stdout
