"""A test OIDC issuer on loopback: a real HTTP server publishing its discovery document and
JWKS, and signing tokens with its keys (RS256, ES256 or EdDSA), so the services fetch and
cache keys over HTTP exactly as they would from an identity provider or a CI system.

``rotate()`` replaces the signing key, as issuers do; ``jwks_requests`` counts the key fetches.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


def _new_key(algorithm: str) -> Any:
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(algorithm)


def _public_jwk(key: Any, algorithm: str, kid: str) -> dict[str, Any]:
    algorithm_class = jwt.get_algorithm_by_name(algorithm)
    jwk = json.loads(algorithm_class.to_jwk(key.public_key()))
    jwk.update(kid=kid, use="sig", alg=algorithm)
    return dict(jwk)


class TestIssuer:
    """An OIDC issuer at ``http://127.0.0.1:<port>`` (or named ``issuer``, as GitHub's or
    GitLab's, with its keys still served here: ``jwks_uri``)."""

    __test__ = False  # not a pytest class

    def __init__(self, *, algorithm: str = "RS256", issuer: str | None = None) -> None:
        self.algorithm = algorithm
        self._issuer = issuer
        self.keys: list[tuple[str, Any]] = []
        self.jwks_requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.rotate()

    # --- the HTTP side -----------------------------------------------------------------------

    def __enter__(self) -> TestIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": issuer.issuer, "jwks_uri": issuer.jwks_uri,
                            "authorization_endpoint": f"{issuer.url}/authorize",
                            "token_endpoint": f"{issuer.url}/token",
                            "id_token_signing_alg_values_supported": [issuer.algorithm]}
                elif self.path == "/jwks":
                    issuer.jwks_requests += 1
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def url(self) -> str:
        assert self._server is not None, "the issuer is not serving"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self._issuer or self.url

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks"

    def jwks(self) -> dict[str, Any]:
        return {"keys": [_public_jwk(key, self.algorithm, kid) for kid, key in self.keys]}

    # --- keys and tokens ----------------------------------------------------------------------

    def rotate(self) -> str:
        """A new signing key replaces the current one in the JWKS; returns its ``kid``."""
        kid = uuid.uuid4().hex[:12]
        self.keys = [(kid, _new_key(self.algorithm))]
        return kid

    def token(self, claims: dict[str, Any], *, audience: str | None = "tandem",
              ttl: float = 600, kid: str | None = None, key: Any = None,
              headers: dict[str, Any] | None = None) -> str:
        """A token with ``claims`` over the standard ones (iss, aud, iat, nbf, exp, jti)."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": self.issuer, "iat": now, "nbf": now,
                                "exp": now + int(ttl), "jti": uuid.uuid4().hex}
        if audience is not None:
            body["aud"] = audience
        body.update(claims)
        current_kid, current_key = self.keys[0]
        return jwt.encode(body, key if key is not None else current_key,
                          algorithm=self.algorithm,
                          headers={"kid": kid or current_kid, **(headers or {})})

    def config(self, **fields: Any) -> dict[str, Any]:
        """This issuer's entry for ``TANDEM_AUTH_OIDC_ISSUERS``."""
        entry: dict[str, Any] = {"issuer": self.issuer, "audience": "tandem"}
        if self._issuer is not None:
            entry["jwks_uri"] = self.jwks_uri
        entry.update(fields)
        return entry


def github_claims(repository: str, *, environment: str | None = "production",
                  ref: str = "refs/heads/main") -> dict[str, Any]:
    """The claims of a GitHub Actions job token (GitHub's documented claim set)."""
    owner = repository.split("/")[0]
    claims: dict[str, Any] = {
        "sub": f"repo:{repository}:environment:{environment}" if environment
        else f"repo:{repository}:ref:{ref}",
        "repository": repository, "repository_owner": owner,
        "repository_id": "74", "repository_owner_id": "65", "ref": ref, "ref_type": "branch",
        "sha": "a" * 40, "workflow": "deploy", "event_name": "push", "actor": "octocat",
        "run_id": "1", "run_number": "1", "run_attempt": "1", "runner_environment":
        "github-hosted", "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
    }
    if environment:
        claims["environment"] = environment
    return claims


def gitlab_claims(project_path: str, *, environment: str | None = "production",
                  ref: str = "main") -> dict[str, Any]:
    """The claims of a GitLab CI ``id_tokens`` token (GitLab's documented claim set)."""
    namespace = project_path.rsplit("/", 1)[0]
    claims: dict[str, Any] = {
        "sub": f"project_path:{project_path}:ref_type:branch:ref:{ref}",
        "project_path": project_path, "project_id": "22", "namespace_path": namespace,
        "namespace_id": "1", "user_login": "gitlab-user", "pipeline_id": "1201",
        "pipeline_source": "push", "job_id": "3001", "ref": ref, "ref_type": "branch",
        "ref_protected": "true",
    }
    if environment:
        claims["environment"] = environment
    return claims
