"""Local tokens (``tandem token mint``): a maximum lifetime, a ``jti`` in each, revocation that
every service honours within seconds, and a key pair so services verify without the secret."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from apps_under_test import ALL, Running, platform_for, running

from tandem.auth import TokenVerifier, mint_token, new_signing_key
from tandem.problems import Problem
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import eventually

#: A read every role may make, per service.
READ = {"incidents": "/api/v1/incidents", "changes": "/api/v1/changes",
        "deployments": "/api/v1/deployments", "dashboard": "/api/v1/board",
        "catalog": "/api/v1/services", "notifier": "/api/v1/subscriptions"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, object]:
    return jwt.decode(token, options={"verify_signature": False})


async def test_a_minted_token_has_a_jti_and_a_token_living_past_the_maximum_is_refused(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    async with running("incidents", broker, tmp_path) as svc:
        first, second = svc.token("viewer"), svc.token("viewer")
        assert claims(first)["jti"] and claims(first)["jti"] != claims(second)["jti"]
        ok = await svc.client.get(READ["incidents"], headers=bearer(first))
        assert ok.status_code == 200, ok.text

        # The issue's own finding: exp in the year 9999.
        now = int(time.time())
        forever = jwt.encode({"sub": "mallory", "role": "owner", "iat": now,
                              "exp": 253402300799, "jti": uuid.uuid4().hex},
                             svc.platform.jwt_secret, algorithm="HS256")
        r = await svc.client.get(READ["incidents"], headers=bearer(forever))
        assert r.status_code == 401
        assert r.json()["check"] == "lifetime"
        assert "90 days" in r.json()["detail"]
        # No iat does not help: the lifetime is then counted from now.
        no_iat = jwt.encode({"sub": "mallory", "role": "owner", "exp": now + 91 * 86400,
                             "jti": uuid.uuid4().hex}, svc.platform.jwt_secret,
                            algorithm="HS256")
        assert (await svc.client.get(READ["incidents"],
                                     headers=bearer(no_iat))).json()["check"] == "lifetime"
        # Just inside the default 90 days is fine.
        long = svc.token("viewer", ttl=timedelta(days=89))
        assert (await svc.client.get(READ["incidents"], headers=bearer(long))).status_code == 200
        # A token without a jti could never be revoked: refused.
        no_jti = jwt.encode({"sub": "old", "role": "viewer", "iat": now, "exp": now + 60},
                            svc.platform.jwt_secret, algorithm="HS256")
        r = await svc.client.get(READ["incidents"], headers=bearer(no_jti))
        assert r.status_code == 401
        assert r.json()["check"] == "jti"


async def test_the_maximum_lifetime_is_configurable(broker: EmbeddedBroker,
                                                    tmp_path: Path) -> None:
    async with running("catalog", broker, tmp_path, auth_max_token_lifetime="1h") as svc:
        short = svc.token("viewer", ttl=timedelta(minutes=59))
        assert (await svc.client.get(READ["catalog"], headers=bearer(short))).status_code == 200
        longer = svc.token("viewer", ttl=timedelta(hours=2))
        r = await svc.client.get(READ["catalog"], headers=bearer(longer))
        assert r.status_code == 401
        assert r.json()["check"] == "lifetime"


async def test_with_a_public_key_a_service_verifies_tokens_it_could_never_mint(
        broker: EmbeddedBroker, tmp_path: Path) -> None:
    private_pem, public_pem = new_signing_key()
    minter_key = tmp_path / "minter" / "auth-key"
    minter_key.parent.mkdir()
    minter_key.write_text(private_pem)
    public_key = tmp_path / "auth-key.pub"
    public_key.write_text(public_pem)
    var = tmp_path / "service-var"
    async with running("deployments", broker, var, auth_secret=None,
                       auth_verification_key_file=public_key) as svc:
        token = mint_token(private_pem, sub="ci-bot", role="pipeline", ttl=timedelta(hours=1))
        assert jwt.get_unverified_header(token)["alg"] == "EdDSA"
        ok = await svc.client.get(READ["deployments"], headers=bearer(token))
        assert ok.status_code == 200, ok.text
        # The service holds no secret at all: none was read, none generated.
        assert not (var / "auth-secret").exists()
        # A shared-secret token is refused, whatever secret signed it.
        hs = mint_token("a-secret-the-service-does-not-have-0123456789", sub="m", role="owner",
                        ttl=timedelta(hours=1))
        r = await svc.client.get(READ["deployments"], headers=bearer(hs))
        assert r.status_code == 401
        assert r.json()["check"] == "algorithm"
        # As is a token signed by another key pair.
        other_private, _ = new_signing_key()
        forged = mint_token(other_private, sub="m", role="owner", ttl=timedelta(hours=1))
        r = await svc.client.get(READ["deployments"], headers=bearer(forged))
        assert r.status_code == 401
        assert r.json()["check"] == "signature"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_revoked_token_is_refused_by_every_service_within_5_seconds(
        broker: EmbeddedBroker, tmp_path: Path, backend: str) -> None:
    platform = platform_for(broker, tmp_path)
    async with AsyncExitStack() as stack:
        services: dict[str, Running] = {}
        for name in ALL:
            services[name] = await stack.enter_async_context(
                running(name, broker, tmp_path / name, backend, platform=platform))
        catalog = services["catalog"]
        token = catalog.token("practitioner", "pat")
        kept = catalog.token("practitioner", "pat")
        for name, svc in services.items():
            r = await svc.client.get(READ[name], headers=bearer(token))
            assert r.status_code == 200, (name, r.text)

        # Running services (their consumers joined): the 5 s are the revocation's alone, not a
        # start-up's.
        async def connected() -> bool:
            answers = [(await svc.client.get("/readyz")).json() for svc in services.values()]
            return all(a["broker"] == "connected" for a in answers)

        await eventually(connected, timeout=60)
        # And the whole path has carried one revocation (the catalog's relay and producer up,
        # every consumer assigned its partitions): a first token, revoked and refused.
        warm = catalog.token("viewer", "warm-up")
        r = await catalog.client.post("/api/v1/revocations", json={"jti": claims(warm)["jti"]},
                                      headers=catalog.headers("manager", "carol"))
        assert r.status_code == 201, r.text

        async def all_refuse_warm() -> bool:
            answers = [await svc.client.get(READ[n], headers=bearer(warm))
                       for n, svc in services.items()]
            return all(a.status_code == 401 for a in answers)

        await eventually(all_refuse_warm, timeout=60)

        # A practitioner may not revoke; a manager may.
        body = {"jti": claims(token)["jti"], "reason": "laptop lost"}
        denied = await catalog.client.post("/api/v1/revocations", json=body,
                                           headers=bearer(kept))
        assert denied.status_code == 403
        started = time.monotonic()
        r = await catalog.client.post("/api/v1/revocations", json=body,
                                      headers=catalog.headers("manager", "carol"))
        assert r.status_code == 201, r.text
        revocation = r.json()
        assert revocation["number"].startswith("REV")
        assert revocation["jti"] == body["jti"]
        # Kept as long as the token could live, no longer.
        assert (datetime.fromisoformat(revocation["expires_at"]) - datetime.now(UTC)
                <= timedelta(days=90))

        refused_after: dict[str, float] = {}
        while len(refused_after) < len(services) and time.monotonic() - started < 5.0:
            for name, svc in services.items():
                if name in refused_after:
                    continue
                # When the refusing request was sent (a loaded machine answers late).
                sent = time.monotonic() - started
                r = await svc.client.get(READ[name], headers=bearer(token))
                if r.status_code == 401:
                    assert r.json()["check"] == "revoked", (name, r.text)
                    assert r.json()["detail"] == "The token has been revoked."
                    refused_after[name] = sent
        assert set(refused_after) == set(services), (
            f"still accepted after 5 s by {sorted(set(services) - set(refused_after))}")
        # Only that token: another of the same person still works everywhere.
        for name, svc in services.items():
            r = await svc.client.get(READ[name], headers=bearer(kept))
            assert r.status_code == 200, (name, r.text)
        # Revoking again is the same revocation.
        again = await catalog.client.post("/api/v1/revocations", json=body,
                                          headers=catalog.headers("manager", "carol"))
        assert again.status_code == 200
        assert again.json()["id"] == revocation["id"]
        print(f"refused after (s): { {n: round(t, 2) for n, t in refused_after.items()} }")


@pytest.mark.parametrize(("body", "field"), [
    ({"jti": "has space"}, "jti"),
    ({"jti": ""}, "jti"),
    ({"jti": "a", "expires_at": "2026-12-01T10:00:00"}, "expires_at"),  # no time zone
    ({"jti": "a", "expires_at": "9999-12-31T23:00:00-05:00"}, "expires_at"),
    ({"jti": "a", "expires_at": 0}, "expires_at"),  # a number is no RFC 3339 time
    ({"jti": "a", "reason": "x" * 2001}, "reason"),
])
async def test_a_bad_revocation_is_a_422_naming_the_field(broker: EmbeddedBroker, tmp_path: Path,
                                                          body: dict[str, object],
                                                          field: str) -> None:
    async with running("catalog", broker, tmp_path) as svc:
        r = await svc.client.post("/api/v1/revocations", json=body,
                                  headers=svc.headers("manager"))
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_a_revocation_is_kept_no_longer_than_a_token_can_live(broker: EmbeddedBroker,
                                                                     tmp_path: Path) -> None:
    async with running("catalog", broker, tmp_path, auth_max_token_lifetime="1d") as svc:
        r = await svc.client.post("/api/v1/revocations",
                                  json={"jti": "j1", "expires_at": "2999-01-01T00:00:00Z"},
                                  headers=svc.headers("owner"))
        assert r.status_code == 201, r.text
        kept_until = datetime.fromisoformat(r.json()["expires_at"])
        assert kept_until - datetime.now(UTC) <= timedelta(days=1)
        listed = await svc.client.get("/api/v1/revocations", headers=svc.headers("manager"))
        assert [x["jti"] for x in listed.json()["items"]] == ["j1"]
        by_jti = await svc.client.get("/api/v1/revocations/j1", headers=svc.headers("manager"))
        assert by_jti.json()["id"] == r.json()["id"]


def test_a_remembered_token_is_refused_once_it_expires_or_is_revoked() -> None:
    """The verifier remembers a verified token (a client sends it with every request); the
    remembered one still expires on time and is refused once revoked."""
    secret = "s" * 40
    verifier = TokenVerifier(local_key=secret)
    short = mint_token(secret, sub="ci-job", role="pipeline", ttl=timedelta(seconds=1))
    assert verifier.verify(short).sub == "ci-job"
    assert verifier.verify(short).sub == "ci-job"  # the remembered one
    time.sleep(1.2)
    with pytest.raises(Problem) as expired:
        verifier.verify(short)
    assert (expired.value.status, expired.value.extra["check"]) == (401, "expired")

    kept = mint_token(secret, sub="person", role="viewer", ttl=timedelta(hours=1))
    assert verifier.verify(kept).sub == "person"
    jti = jwt.decode(kept, options={"verify_signature": False})["jti"]
    verifier.revoked.add(jti, datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(Problem) as revoked:
        verifier.verify(kept)
    assert (revoked.value.status, revoked.value.extra["check"]) == (401, "revoked")
