"""Access tokens from OpenID Connect issuers: people's identity providers and CI systems.

``TANDEM_AUTH_OIDC_ISSUERS`` lists the issuers a service trusts (JSON, :class:`OidcIssuer`).
A token naming one of them in ``iss`` is verified with that issuer's published keys (its JWKS,
fetched once, cached, and fetched again when a token names a key id not seen yet, at most once
per ``min_refresh_s``), asymmetric algorithms only, ``aud``, ``exp``, ``nbf`` and ``iat``
checked with a small clock skew. Every refusal is a :class:`TokenRefused` naming the check that
failed, never the key that was tried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tandem.vocabulary import repository_name

#: The only algorithms an OIDC issuer's token may use: never ``none``, never HS*.
OIDC_ALGORITHMS = ("RS256", "ES256", "EdDSA")

#: Where GitHub Actions and GitLab CI issue their job tokens.
GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"


class TokenRefused(Exception):
    """A token Tandem will not accept; ``check`` names which check failed (a stable word a
    client can act on: ``issuer``, ``signature``, ``audience``, ``expired``...)."""

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(detail)
        self.check = check
        self.detail = detail


class OidcIssuer(BaseModel):
    """One trusted issuer, as ``TANDEM_AUTH_OIDC_ISSUERS`` lists it.

    ``ci`` marks a CI system's issuer (``github`` or ``gitlab``): its tokens are the pipeline
    role, limited to the catalog service whose ``repository`` is the job's repository. Any
    other issuer's tokens get the role its ``roles_claim`` maps to through ``roles`` (claim
    value -> Tandem role; the most capable wins), else ``default_role``, and the catalog teams
    ``teams`` maps the same claim's values to.
    """

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1)
    audience: str | list[str]
    #: Unset: discovered from ``<issuer>/.well-known/openid-configuration``.
    jwks_uri: str | None = None
    ci: Literal["github", "gitlab"] | None = None
    #: The claim carrying roles or groups (a dotted path for nested claims).
    roles_claim: str = "groups"
    roles: dict[str, str] = Field(default_factory=dict)
    teams: dict[str, str] = Field(default_factory=dict)
    default_role: str | None = None
    #: The claim that names the person or job (the actor on events).
    subject_claim: str = "sub"
    algorithms: list[str] = Field(default_factory=lambda: list(OIDC_ALGORITHMS))

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        refused = [a for a in value if a not in OIDC_ALGORITHMS]
        if refused or not value:
            raise ValueError(f"algorithms must be among {', '.join(OIDC_ALGORITHMS)}; "
                             f"not {', '.join(refused) or 'none'}")
        return value

    @property
    def audiences(self) -> list[str]:
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)


def parse_issuers(raw: str | None) -> list[OidcIssuer]:
    """The issuers of ``TANDEM_AUTH_OIDC_ISSUERS`` (a JSON list; one object is a list of one)."""
    if not raw or not raw.strip():
        return []
    import json

    value = json.loads(raw)
    items = value if isinstance(value, list) else [value]
    return [OidcIssuer.model_validate(item) for item in items]


def claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """A claim that may be one string or a list of them, as a list of strings."""
    value = claim(claims, path)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def ci_repository(issuer: OidcIssuer, claims: Mapping[str, Any]) -> str | None:
    """The repository a CI job token speaks for, as the catalog writes it
    (``github.com/acme/payments``): GitHub's ``repository``, GitLab's ``project_path`` on the
    issuer's host."""
    if issuer.ci == "github":
        name = claims.get("repository")
        host = "github.com"
    elif issuer.ci == "gitlab":
        name = claims.get("project_path")
        host = urlsplit(issuer.issuer).hostname or "gitlab.com"
    else:
        return None
    if not isinstance(name, str) or not name.strip("/"):
        return None
    return repository_name(f"{host}/{name.strip('/')}")


Fetch = Callable[[str], Any]


def _fetch_json(url: str) -> Any:
    response = httpx.get(url, timeout=5.0, follow_redirects=False)
    response.raise_for_status()
    return response.json()


class IssuerKeys:
    """An issuer's signing keys from its JWKS: cached, fetched again for an unknown ``kid``
    (so a rotation at the issuer is picked up), and never more often than ``min_refresh_s``
    (so tokens naming made-up key ids cannot make Tandem hammer the issuer)."""

    def __init__(self, issuer: OidcIssuer, *, min_refresh_s: float = 30.0,
                 fetch: Fetch = _fetch_json) -> None:
        self.issuer = issuer
        self.min_refresh_s = min_refresh_s
        self.fetch = fetch
        self._keys: dict[str | None, list[jwt.PyJWK]] = {}
        self._fetched_at: float | None = None
        self._jwks_uri = issuer.jwks_uri
        self._lock = threading.Lock()
        #: How many times the JWKS was fetched (a figure for tests and operators).
        self.fetches = 0

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        if self._jwks_uri is None:
            discovery = self.fetch(
                self.issuer.issuer.rstrip("/") + "/.well-known/openid-configuration")
            self._jwks_uri = str(discovery["jwks_uri"])
        document = self.fetch(self._jwks_uri)
        self.fetches += 1
        keys: dict[str | None, list[jwt.PyJWK]] = {}
        for entry in document.get("keys", []):
            if entry.get("use", "sig") != "sig":
                continue
            try:
                key = jwt.PyJWK(entry)
            except jwt.PyJWKError:
                continue  # a key type this process cannot use is no key to trust
            keys.setdefault(entry.get("kid"), []).append(key)
            keys.setdefault(None, []).append(key)
        self._keys = keys

    def keys_for(self, kid: str | None) -> list[jwt.PyJWK]:
        """The keys a token with ``kid`` may be signed with (every key when it names none)."""
        with self._lock:
            found = self._keys.get(kid)
            stale = (self._fetched_at is None
                     or time.monotonic() - self._fetched_at >= self.min_refresh_s)
            if not found and stale:
                try:
                    self._refresh()
                except (httpx.HTTPError, ValueError, KeyError, TypeError):
                    raise TokenRefused(
                        "issuer_unreachable",
                        "The token's issuer could not be asked for its keys; retry shortly.",
                    ) from None
                found = self._keys.get(kid)
            return list(found or [])


def verify_oidc(token: str, issuer: OidcIssuer, keys: IssuerKeys, *,
                skew_s: float) -> dict[str, Any]:
    """The claims of ``token`` from ``issuer``, every check passed, or :class:`TokenRefused`."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRefused("malformed", "The token is not valid.") from None
    algorithm = header.get("alg")
    if algorithm not in issuer.algorithms:
        raise TokenRefused("algorithm", f"The token's algorithm {algorithm!s:.16} is not one "
                           f"accepted for its issuer ({', '.join(issuer.algorithms)}).")
    kid = header.get("kid")
    candidates = [k for k in keys.keys_for(kid if isinstance(kid, str) else None)
                  if k.algorithm_name == algorithm]
    if not candidates:
        raise TokenRefused("signature", "The token's signature does not verify against its "
                           "issuer's published keys.")
    last: Exception | None = None
    for key in candidates:
        try:
            return jwt.decode(
                token, key.key, algorithms=[algorithm], audience=issuer.audiences,
                issuer=issuer.issuer, leeway=skew_s,
                options={"require": ["iss", "sub", "exp", "aud"]},
            )
        except jwt.InvalidSignatureError as exc:
            last = exc
            continue
        except jwt.InvalidTokenError as exc:
            raise refusal(exc) from None
    raise refusal(last or jwt.InvalidSignatureError())


def refusal(exc: Exception) -> TokenRefused:
    """The refusal for a PyJWT error: which check failed, in words a person can act on."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenRefused("expired", "The token has expired.")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenRefused("not_yet_valid", "The token is not valid yet (nbf or iat is in "
                                             "the future).")
    if isinstance(exc, jwt.InvalidAudienceError):
        return TokenRefused("audience", "The token is not meant for Tandem (its audience).")
    if isinstance(exc, jwt.InvalidIssuerError):
        return TokenRefused("issuer", "The token's issuer is not one Tandem trusts.")
    if isinstance(exc, jwt.InvalidSignatureError):
        return TokenRefused("signature", "The token's signature does not verify.")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return TokenRefused("algorithm", "The token's algorithm is not accepted.")
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return TokenRefused("malformed", f"The token lacks the {exc.claim} claim.")
    return TokenRefused("malformed", "The token is not valid.")
