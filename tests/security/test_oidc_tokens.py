"""Access tokens of OIDC issuers: a test issuer on loopback publishes its JWKS over real HTTP;
people's tokens map to roles, CI jobs' tokens (GitHub- and GitLab-shaped) to the pipeline role
of their own service only; every refusal says which check failed, never which key."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from apps_under_test import platform_for, running

from tandem.oidc import GITHUB_ACTIONS_ISSUER, GITLAB_ISSUER
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import eventually
from tandem_testing.oidc import TestIssuer, github_claims, gitlab_claims

INCIDENT = {"title": "Card payments fail", "service": "payments", "environment": "production",
            "impact": 2, "urgency": 2}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def people_issuer(issuer: TestIssuer) -> dict[str, Any]:
    return issuer.config(roles_claim="groups",
                         roles={"tandem-viewers": "viewer", "sre": "practitioner",
                                "sre-leads": "manager"},
                         teams={"sre": "payments-ops"}, subject_claim="preferred_username")


def issuers_setting(*entries: dict[str, Any]) -> str:
    return json.dumps(list(entries))


async def test_a_persons_token_gets_the_role_its_groups_map_to(broker: EmbeddedBroker,
                                                                tmp_path: Path) -> None:
    with TestIssuer(algorithm="ES256") as idp:
        async with running("incidents", broker, tmp_path,
                           auth_oidc_issuers=issuers_setting(people_issuer(idp))) as svc:
            viewer = idp.token({"sub": "u-1", "preferred_username": "vic",
                                "groups": ["tandem-viewers", "unrelated"]})
            assert (await svc.client.get("/api/v1/incidents",
                                         headers=bearer(viewer))).status_code == 200
            r = await svc.client.post("/api/v1/incidents", json=INCIDENT, headers=bearer(viewer))
            assert r.status_code == 403
            # The most capable of several groups wins; the actor is the configured claim.
            lead = idp.token({"sub": "u-2", "preferred_username": "pat",
                              "groups": ["tandem-viewers", "sre"]})
            r = await svc.client.post("/api/v1/incidents", json=INCIDENT, headers=bearer(lead))
            assert r.status_code == 201, r.text
            timeline = await svc.client.get(f"/api/v1/incidents/{r.json()['id']}/timeline",
                                            headers=bearer(lead))
            assert timeline.json()["items"][0]["actor"] == "pat"
            # Groups that map to nothing: no role.
            nobody = idp.token({"sub": "u-3", "preferred_username": "x", "groups": ["other"]})
            r = await svc.client.get("/api/v1/incidents", headers=bearer(nobody))
            assert r.status_code == 401
            assert r.json()["check"] == "role"


async def test_each_bad_token_is_a_401_that_says_which_check_failed(broker: EmbeddedBroker,
                                                                      tmp_path: Path) -> None:
    with TestIssuer() as idp, TestIssuer() as stranger:
        async with running("changes", broker, tmp_path,
                           auth_oidc_issuers=issuers_setting(people_issuer(idp))) as svc:
            person = {"sub": "u-1", "preferred_username": "vic", "groups": ["tandem-viewers"]}
            kid = idp.keys[0][0]
            now = int(time.time())
            impostor_key = TestIssuer().keys[0][1]  # a key the issuer never published
            cases = {
                "issuer": stranger.token(person),
                "audience": idp.token(person, audience="another-app"),
                "expired": idp.token({**person, "iat": now - 900}, ttl=-300),
                "not_yet_valid": idp.token({**person, "nbf": now + 600}),
                "signature": idp.token(person, key=impostor_key),
                "algorithm": jwt.encode({**person, "iss": idp.issuer, "aud": "tandem",
                                         "exp": now + 60}, None, algorithm="none"),
            }
            # HS* is never accepted for an issuer, even signed with what a JWKS might show.
            hs = jwt.encode({**person, "iss": idp.issuer, "aud": "tandem", "exp": now + 60},
                            "a-shared-secret-an-attacker-chose-0123456789", algorithm="HS256")
            for check, token in [*cases.items(), ("algorithm", hs)]:
                r = await svc.client.get("/api/v1/changes", headers=bearer(token))
                assert r.status_code == 401, (check, r.text)
                problem = r.json()
                assert problem["check"] == check, (check, problem)
                assert problem["type"] == "urn:tandem:problem:unauthorized"
                assert r.headers["www-authenticate"].startswith("Bearer")
                assert kid not in r.text  # never which key was tried
            ok = await svc.client.get("/api/v1/changes", headers=bearer(idp.token(person)))
            assert ok.status_code == 200, ok.text


async def test_a_key_rotation_at_the_issuer_is_picked_up(broker: EmbeddedBroker,
                                                         tmp_path: Path) -> None:
    with TestIssuer(algorithm="EdDSA") as idp:
        async with running("catalog", broker, tmp_path,
                           auth_oidc_issuers=issuers_setting(people_issuer(idp)),
                           auth_jwks_min_refresh_s=0.5) as svc:
            person = {"sub": "u-1", "preferred_username": "vic", "groups": ["tandem-viewers"]}
            before = idp.token(person)
            assert (await svc.client.get("/api/v1/services",
                                         headers=bearer(before))).status_code == 200
            assert idp.jwks_requests == 1
            # Cached: more tokens of the same key fetch nothing.
            for _ in range(3):
                await svc.client.get("/api/v1/services", headers=bearer(idp.token(person)))
            assert idp.jwks_requests == 1

            idp.rotate()
            await asyncio.sleep(0.6)
            after = idp.token(person)
            r = await svc.client.get("/api/v1/services", headers=bearer(after))
            assert r.status_code == 200, r.text
            assert idp.jwks_requests == 2
            # The retired key is no longer trusted.
            r = await svc.client.get("/api/v1/services", headers=bearer(before))
            assert r.status_code == 401
            assert r.json()["check"] == "signature"
            # Made-up key ids cannot make the service hammer the issuer: at most one fetch
            # per refresh interval (0.5 s here), however many such tokens come.
            fetched = idp.jwks_requests
            started = time.monotonic()
            for n in range(20):
                r = await svc.client.get("/api/v1/services",
                                         headers=bearer(idp.token(person, kid=f"made-up-{n}")))
                assert r.json()["check"] == "signature"
            elapsed = time.monotonic() - started
            assert idp.jwks_requests - fetched <= 1 + elapsed / 0.5


async def _catalog_service(catalog: Any, name: str, repository: str,
                           **fields: Any) -> None:
    r = await catalog.client.post("/api/v1/services", json={"name": name,
                                                            "repository": repository, **fields},
                                  headers=catalog.headers("owner"))
    assert r.status_code == 201, r.text


def _deployment(service: str, environment: str = "production") -> dict[str, Any]:
    return {"service": service, "environment": environment, "version": "1.4.0",
            "commits": [{"sha": "a" * 40, "committed_at": "2026-12-01T10:00:00Z"}]}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_ci_token_deploys_its_own_service_and_is_refused_anothers(
        broker: EmbeddedBroker, tmp_path: Path, backend: str) -> None:
    with (TestIssuer(issuer=GITHUB_ACTIONS_ISSUER) as github,
          TestIssuer(issuer=GITLAB_ISSUER) as gitlab):
        platform = platform_for(broker, tmp_path, auth_oidc_issuers=issuers_setting(
            github.config(ci="github"), gitlab.config(ci="gitlab")))
        async with AsyncExitStack() as stack:
            catalog, deployments, changes = [
                await stack.enter_async_context(
                    running(name, broker, tmp_path / name, backend, platform=platform))
                for name in ("catalog", "deployments", "changes")]
            await _catalog_service(catalog, "payments", "github.com/acme/payments")
            await _catalog_service(catalog, "checkout", "github.com/acme/checkout")
            await _catalog_service(catalog, "ledger", "gitlab.com/acme/ledger")
            await _catalog_service(catalog, "billing", "github.com/acme/billing",
                                   ci_environments=["staging"])
            payments_job = github.token(github_claims("acme/payments"))
            ledger_job = gitlab.token(gitlab_claims("acme/ledger"))

            async def deploys(token: str, service: str) -> httpx.Response | None:
                r = await deployments.client.post("/api/v1/deployments",
                                                  json=_deployment(service),
                                                  headers=bearer(token))
                return r if r.status_code == 201 else None

            # Once the deployments service has the catalog's repositories, each job deploys
            # its own service.
            own = await eventually(lambda: deploys(payments_job, "payments"))
            assert isinstance(own, httpx.Response)
            assert own.json()["service"] == "payments"
            assert own.json()["triggered_by"] == "repo:acme/payments:environment:production"
            assert await eventually(lambda: deploys(ledger_job, "ledger"))

            # Where the catalog names the environments its CI may deploy to, only those.
            billing_job = github.token(github_claims("acme/billing", environment="staging"))

            async def staged() -> httpx.Response | None:
                r = await deployments.client.post(
                    "/api/v1/deployments", json=_deployment("billing", "staging"),
                    headers=bearer(billing_job))
                return r if r.status_code == 201 else None

            assert await eventually(staged)
            r = await deployments.client.post("/api/v1/deployments",
                                              json=_deployment("billing", "production"),
                                              headers=bearer(billing_job))
            assert r.status_code == 403, r.text
            assert r.json()["type"] == "urn:tandem:problem:pipeline-environment"
            assert (r.json()["rule"], r.json()["allowed"]) == ("create", ["staging"])

            # Another repository's service: refused, the rule named.
            for token, service, repository in (
                    (payments_job, "checkout", "github.com/acme/payments"),
                    (ledger_job, "payments", "gitlab.com/acme/ledger"),
                    (payments_job, "unknown-service", "github.com/acme/payments")):
                r = await deployments.client.post("/api/v1/deployments",
                                                  json=_deployment(service),
                                                  headers=bearer(token))
                assert r.status_code == 403, (service, r.text)
                problem = r.json()
                assert problem["type"] == "urn:tandem:problem:pipeline-repository"
                assert problem["rule"] == "create"
                assert problem["repository"] == repository
                assert service in problem["detail"]

            # Moving another's deployment (posted by a local pipeline token): refused.
            theirs = await deployments.client.post(
                "/api/v1/deployments", json=_deployment("checkout"),
                headers=deployments.headers("pipeline", "checkout-ci"))
            assert theirs.status_code == 201
            r = await deployments.client.post(
                f"/api/v1/deployments/{theirs.json()['id']}/transitions",
                json={"to": "canceled"}, headers=bearer(payments_job))
            assert r.status_code == 403
            assert r.json()["rule"] == "move"
            mine = await deployments.client.post(
                f"/api/v1/deployments/{own.json()['id']}/transitions",
                json={"to": "canceled", "reason": "test"}, headers=bearer(payments_job))
            assert mine.status_code == 200, mine.text
            assert mine.json()["status"] == "canceled"

            # Its own deployment's gate it may read; another's, not.
            gate = await deployments.client.get(f"/api/v1/deployments/{own.json()['id']}/gate",
                                                headers=bearer(payments_job))
            assert gate.status_code == 200, gate.text
            assert gate.json()["deployment_id"] == own.json()["id"]
            r = await deployments.client.get(f"/api/v1/deployments/{theirs.json()['id']}/gate",
                                             headers=bearer(payments_job))
            assert r.status_code == 403, r.text
            assert (r.json()["type"], r.json()["rule"]) == (
                "urn:tandem:problem:pipeline-repository", "gate")
            # A person (a local token) still reads any gate.
            r = await deployments.client.get(f"/api/v1/deployments/{theirs.json()['id']}/gate",
                                             headers=deployments.headers("viewer"))
            assert r.status_code == 200

            # The standard change that lets a deploy through the gate: only for its own
            # service. Once the changes service has the catalog's repositories, its own passes
            # the repository rule (and meets the standard change's own: a template is needed).
            async def standard_change(service: str) -> dict[str, Any]:
                r = await changes.client.post("/api/v1/changes", json={
                    "type": "standard", "title": f"Deploy {service}", "service": service,
                    "environment": "production"}, headers=bearer(payments_job))
                assert r.status_code == 403, r.text
                return r.json()  # type: ignore[no-any-return]

            repository_rule = "urn:tandem:problem:pipeline-repository"
            own_refusal = await eventually(
                lambda: _unless(standard_change("payments"), repository_rule))
            assert own_refusal["type"] == "urn:tandem:problem:standard-change-template-required"
            refused = await standard_change("checkout")
            assert refused["type"] == repository_rule
            assert refused["rule"] == "gate"

            # Where the catalog names the environments its CI may deploy to, its standard
            # changes only there too (staging passes both rules and meets the template's).
            async def billing_change(environment: str) -> dict[str, Any]:
                r = await changes.client.post("/api/v1/changes", json={
                    "type": "standard", "title": "Deploy billing", "service": "billing",
                    "environment": environment}, headers=bearer(billing_job))
                assert r.status_code == 403, r.text
                return r.json()  # type: ignore[no-any-return]

            elsewhere = await eventually(
                lambda: _unless(billing_change("production"), repository_rule))
            assert elsewhere["type"] == "urn:tandem:problem:pipeline-environment"
            assert (elsewhere["rule"], elsewhere["allowed"]) == ("gate", ["staging"])
            staged_change = await billing_change("staging")
            assert staged_change["type"] == "urn:tandem:problem:standard-change-template-required"


async def _unless(answer: Any, problem_type: str) -> dict[str, Any] | None:
    """The awaited problem, or None while it is still of ``problem_type``."""
    problem = await answer
    return None if problem["type"] == problem_type else problem
