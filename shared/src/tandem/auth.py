"""Bearer authentication and the five Tandem roles.

Local tokens (``tandem token mint``) are JWTs signed with the shared secret (HS256, the
embedded default) or with a private key only the minter holds (services then get the public
key alone, ``TANDEM_AUTH_VERIFICATION_KEY_FILE``); each has a ``jti`` and lives at most
``TANDEM_AUTH_MAX_TOKEN_LIFETIME``. Access tokens of configured OIDC issuers (people's identity
providers, GitHub Actions, GitLab CI) are accepted too (:mod:`tandem.oidc`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBearer

from tandem.db import utcnow
from tandem.errors import Forbidden
from tandem.oidc import (
    IssuerKeys,
    OidcIssuer,
    TokenRefused,
    ci_repository,
    claim,
    claim_values,
    parse_issuers,
    refusal,
    verify_oidc,
)
from tandem.problems import Problem
from tandem.vocabulary import repository_name

if TYPE_CHECKING:
    from tandem.settings import PlatformSettings


class Role(StrEnum):
    viewer = "viewer"
    practitioner = "practitioner"
    manager = "manager"
    owner = "owner"
    pipeline = "pipeline"


#: Who may do what: each capability lists the roles that hold it (contract section 2).
READ = frozenset(Role)
WORK = frozenset({Role.practitioner, Role.manager, Role.owner})
MANAGE = frozenset({Role.manager, Role.owner})
OWN = frozenset({Role.owner})
DEPLOY = frozenset({Role.pipeline})
#: Standard changes are recorded by pipelines as well as by people.
RECORD_CHANGE = WORK | DEPLOY


@dataclass(frozen=True)
class Actor:
    """Who a request speaks for: the token's ``sub`` and role, and for a token from an OIDC
    issuer the issuer, the catalog teams its groups map to, and for a CI job its repository
    (``github.com/acme/payments``) and deployment environment."""

    sub: str
    role: Role
    issuer: str | None = None
    teams: tuple[str, ...] = ()
    repository: str | None = None
    environment: str | None = None


_TTL = re.compile(r"^(\d+)([smhd])$")


def parse_ttl(ttl: str) -> timedelta:
    m = _TTL.match(ttl.strip())
    if not m:
        raise ValueError(f"TTL {ttl!r} is not like 30d, 12h, 15m or 60s")
    n, unit = int(m.group(1)), m.group(2)
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[unit]: n})


def valid_actor(sub: object) -> bool:
    """Whether ``sub`` can name the actor of events: 1 to 255 printable characters."""
    return (isinstance(sub, str) and 1 <= len(sub) <= 255 and sub.isprintable()
            and sub.strip() == sub)


def _algorithm_of(key: object) -> str:
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ES256"
    raise ValueError("the key is not an Ed25519, RSA or P-256 key")


def is_pem(text: str) -> bool:
    return text.lstrip().startswith("-----BEGIN")


def signing_key(text: str) -> tuple[Any, str]:
    """The key and algorithm local tokens are signed with: a PEM private key (EdDSA, RS256 or
    ES256: only the minter holds it), else ``text`` is the shared HS256 secret."""
    if is_pem(text):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        return key, _algorithm_of(key)
    return text, "HS256"


def verification_key(text: str) -> tuple[Any, str]:
    """The key and algorithm local tokens are verified with: a PEM public key (a service that
    holds it cannot mint), else ``text`` is the shared HS256 secret."""
    if is_pem(text):
        key = serialization.load_pem_public_key(text.encode())
        return key, _algorithm_of(key)
    return text, "HS256"


def new_signing_key() -> tuple[str, str]:
    """A new Ed25519 key pair as PEM: (private, public)."""
    private = ed25519.Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private_pem, public_pem


def mint_token(secret: str, *, sub: str, role: Role | str, ttl: timedelta) -> str:
    """A local token for ``sub`` in ``role``, living ``ttl``, with a ``jti`` to revoke it by;
    ``secret`` is the shared HS256 secret or a PEM private key (:func:`signing_key`)."""
    if not valid_actor(sub):
        raise ValueError("sub must be 1 to 255 printable characters, with no surrounding spaces")
    now = utcnow()
    claims = {"sub": sub, "role": Role(role).value, "iat": now, "exp": now + ttl,
              "jti": uuid.uuid4().hex}
    key, algorithm = signing_key(secret)
    return jwt.encode(claims, key, algorithm=algorithm)


def _unauthorized(detail: str, check: str | None = None) -> Problem:
    extra = {"check": check} if check else {}
    return Problem(
        401,
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="tandem"'},
        type_="urn:tandem:problem:unauthorized",
        **extra,
    )


#: The most capable role first: a person whose groups map to several gets the first.
_RANK = (Role.owner, Role.manager, Role.practitioner, Role.pipeline, Role.viewer)


class RevokedTokens:
    """The ``jti``s revoked and not yet expired, in memory (kept current from the revocation
    events by :mod:`tandem.revocations`)."""

    def __init__(self) -> None:
        self._until: dict[str, datetime] = {}

    def add(self, jti: str, expires_at: datetime) -> None:
        self._until[jti] = max(expires_at, self._until.get(jti, expires_at))

    def replace(self, entries: dict[str, datetime]) -> None:
        """Keep what the database says (every replica's consumer wrote it there), and what this
        process learnt itself meanwhile."""
        now = utcnow()
        merged = {j: t for j, t in self._until.items() if t > now}
        merged.update(entries)
        self._until = merged

    def __contains__(self, jti: object) -> bool:
        until = self._until.get(jti) if isinstance(jti, str) else None
        return until is not None and until > utcnow()

    def __len__(self) -> int:
        return len(self._until)


#: How many verified tokens a verifier remembers before it starts afresh.
_VERIFIED_KEPT = 4096


class TokenVerifier:
    """Verifies a bearer token into an :class:`Actor`, or refuses it with a 401 problem whose
    ``check`` says which check failed (never which key was tried).

    A token without ``iss`` is local (minted by ``tandem token mint``): verified with the
    shared secret (HS256) or, when the service is given only a public key, with that key. A
    token naming an issuer is verified against that configured OIDC issuer. Either kind is
    refused when it lives longer than ``max_lifetime`` or its ``jti`` was revoked.
    """

    def __init__(self, *, local_key: str, max_lifetime: timedelta = timedelta(days=90),
                 issuers: list[OidcIssuer] | None = None, skew_s: float = 60.0,
                 min_refresh_s: float = 30.0, revoked: RevokedTokens | None = None) -> None:
        self.local_key, self.local_algorithm = verification_key(local_key)
        self.max_lifetime = max_lifetime
        self.skew_s = skew_s
        self.issuers = {i.issuer: i for i in issuers or []}
        self.keys = {i.issuer: IssuerKeys(i, min_refresh_s=min_refresh_s)
                     for i in issuers or []}
        self.revoked = revoked if revoked is not None else RevokedTokens()
        #: Tokens verified already, by their exact text: (actor, jti, valid until, the
        #: issuer's keys and how often they had been fetched). A client sends the same token
        #: with every request; a repeat is checked for expiry and revocation only (decoding
        #: and the signature cost more than a create's SQL), until its issuer's keys change.
        self._verified: dict[str, tuple[Actor, object, float, IssuerKeys | None, int]] = {}

    @classmethod
    def from_settings(cls, platform: PlatformSettings) -> TokenVerifier:
        return cls(local_key=platform.verification_key,
                   max_lifetime=parse_ttl(platform.auth_max_token_lifetime),
                   issuers=parse_issuers(platform.auth_oidc_issuers),
                   skew_s=platform.auth_clock_skew_s,
                   min_refresh_s=platform.auth_jwks_min_refresh_s)

    def may_fetch_keys(self, token: str) -> bool:
        """Whether verifying ``token`` may fetch an issuer's keys: it names an issuer, issuers
        are configured, and it was not verified already (a local token never does)."""
        if not self.issuers or token in self._verified:
            return False
        try:
            return "iss" in jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return False

    def verify(self, token: str) -> Actor:
        try:
            known = self._verified.get(token)
            if known is not None and time.time() < known[2] and (
                    known[3] is None or known[3].fetches == known[4]):
                if known[1] in self.revoked:
                    raise TokenRefused("revoked", "The token has been revoked.")
                return known[0]
            actor, claims, keys = self._verify(token)
        except TokenRefused as refused:
            raise _unauthorized(refused.detail, refused.check) from None
        if isinstance(exp := claims.get("exp"), int | float):
            if len(self._verified) >= _VERIFIED_KEPT:
                self._verified.clear()
            self._verified[token] = (actor, claims.get("jti"),
                                     exp + (0.0 if keys is None else self.skew_s), keys,
                                     0 if keys is None else keys.fetches)
        return actor

    def _verify(self, token: str) -> tuple[Actor, dict[str, Any], IssuerKeys | None]:
        """The actor, the verified claims, and the issuer's keys that verified them (None
        for a local token)."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise TokenRefused("malformed", "The token is not valid.") from None
        iss = unverified.get("iss")
        keys = None
        if iss is None:
            claims = self._local_claims(token)
            actor = self._local_actor(claims)
        else:
            issuer = self.issuers.get(iss) if isinstance(iss, str) else None
            if issuer is None:
                raise TokenRefused("issuer", "The token's issuer is not one Tandem trusts.")
            keys = self.keys[issuer.issuer]
            claims = verify_oidc(token, issuer, keys, skew_s=self.skew_s)
            actor = self._oidc_actor(issuer, claims)
        self._check_lifetime(claims)
        if claims.get("jti") in self.revoked:
            raise TokenRefused("revoked", "The token has been revoked.")
        return actor, claims, keys

    def _local_claims(self, token: str) -> dict[str, Any]:
        try:
            # No leeway: Tandem's own clocks mint these (the skew is for other issuers').
            return jwt.decode(token, self.local_key, algorithms=[self.local_algorithm],
                              options={"require": ["sub", "exp"]})
        except jwt.InvalidTokenError as exc:
            raise refusal(exc) from None

    def _local_actor(self, claims: dict[str, Any]) -> Actor:
        if not valid_actor(claims["sub"]):
            raise TokenRefused("subject", "The token's sub cannot name an actor (1 to 255 "
                                          "printable characters).")
        try:
            role = Role(claims.get("role"))
        except ValueError:
            raise TokenRefused("role", "The token names no known role.") from None
        if not isinstance(claims.get("jti"), str) or not claims["jti"]:
            raise TokenRefused("jti", "The token has no jti, so it could not be revoked; mint "
                                      "a new one (tandem token mint).")
        return Actor(sub=claims["sub"], role=role)

    def _oidc_actor(self, issuer: OidcIssuer, claims: dict[str, Any]) -> Actor:
        sub = claim(claims, issuer.subject_claim)
        if not valid_actor(sub):
            raise TokenRefused("subject", f"The token's {issuer.subject_claim} cannot name an "
                                          "actor (1 to 255 printable characters).")
        if issuer.ci is not None:
            repository = ci_repository(issuer, claims)
            if repository is None:
                raise TokenRefused("repository", "The CI job's token names no repository.")
            environment = claims.get("environment")
            return Actor(sub=sub, role=Role.pipeline, issuer=issuer.issuer,
                         repository=repository,
                         environment=environment if isinstance(environment, str) else None)
        values = claim_values(claims, issuer.roles_claim)
        granted = {Role(issuer.roles[v]) for v in values if v in issuer.roles}
        role = next((r for r in _RANK if r in granted), None)
        if role is None and issuer.default_role:
            role = Role(issuer.default_role)
        if role is None:
            raise TokenRefused("role", f"The token's {issuer.roles_claim} map to no Tandem role.")
        teams = tuple(sorted({issuer.teams[v] for v in values if v in issuer.teams}))
        return Actor(sub=sub, role=role, issuer=issuer.issuer, teams=teams)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        exp = claims.get("exp")
        iat = claims.get("iat")
        start = iat if isinstance(iat, int | float) else utcnow().timestamp()
        if isinstance(exp, int | float) and exp - start > (
                self.max_lifetime.total_seconds() + self.skew_s):
            days = self.max_lifetime.total_seconds() / 86400
            raise TokenRefused("lifetime", f"The token lives longer (exp - iat) than the "
                                           f"{days:g} days allowed; mint a shorter one.")


def decode_token(secret: str, token: str) -> Actor:
    """A local token verified with ``secret`` alone (no issuers, no revocations)."""
    return TokenVerifier(local_key=secret).verify(token)


#: The security scheme of every operation that needs a token (:func:`authenticate`).
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="A Tandem token: `tandem token mint --role ROLE --sub NAME` prints one "
    "(`make run` prints one per role). Paste it without the word Bearer.",
)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise _unauthorized("Authorization must be a Bearer token.")
        return value.strip()
    return None


def verifier_of(request: Request) -> TokenVerifier:
    """The running app's verifier (set by the app factory)."""
    return request.app.state.verifier  # type: ignore[no-any-return]


async def authenticate(request: Request, _scheme: Annotated[object, Depends(BEARER)]) -> Actor:
    # ``BEARER`` declares the scheme in the OpenAPI document; the header is read here, so a
    # wrong one is a 401 problem that says what is wrong.
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("A bearer token is required.")
    verifier = verifier_of(request)
    # A local token is verified on the loop (a thread hand-off cost more than the HMAC); an
    # identity provider's may fetch its keys over HTTP, which must not block the loop.
    if verifier.may_fetch_keys(token):
        actor = await run_in_threadpool(verifier.verify, token)
    else:
        actor = verifier.verify(token)
    request.state.actor = actor
    return actor


def require(roles: frozenset[Role]) -> object:
    """A dependency admitting only ``roles``: 401 without a valid token, 403 with another role."""

    async def dependency(actor: Annotated[Actor, Depends(authenticate)]) -> Actor:
        if actor.role not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise Problem(
                403,
                f"Role {actor.role.value} may not do this; it needs one of: {allowed}.",
                type_="urn:tandem:problem:forbidden",
            )
        return actor

    return Depends(dependency)


Reader = Annotated[Actor, require(READ)]
Worker = Annotated[Actor, require(WORK)]
Manager = Annotated[Actor, require(MANAGE)]
Owner = Annotated[Actor, require(OWN)]
Pipeline = Annotated[Actor, require(DEPLOY)]
ChangeRecorder = Annotated[Actor, require(RECORD_CHANGE)]


class OtherRepository(Forbidden):
    """A CI job's token acts only on the service whose catalog ``repository`` is the job's:
    ``rule`` names what was refused (``create``, ``move`` a deployment; ``gate``: record the
    standard change that lets one through)."""

    code = "pipeline-repository"

    def __init__(self, rule: str, service: str, repository: str,
                 service_repository: str | None) -> None:
        whose = (f"the catalog gives {service} the repository {service_repository}"
                 if service_repository else f"the catalog names no repository for {service}")
        super().__init__(
            f"A pipeline of {repository} may not {rule} for {service}: {whose}.",
            rule=rule, service=service, repository=repository)


def check_pipeline_repository(actor: Actor, service: str, repositories: list[str | None], *,
                              rule: str) -> None:
    """Refuse (403, naming ``rule``) a CI job's token acting for a service whose catalog
    ``repositories`` (the service's projection) are not its own; a token naming no
    repository (a local pipeline token) keeps the role's reach."""
    if actor.repository is None:
        return
    known = [r for r in repositories if r]
    if not any(repository_name(r) == actor.repository for r in known):
        raise OtherRepository(rule, service, actor.repository, known[0] if known else None)


class CatalogReach(Protocol):
    """What a service's projection of a catalog service says of its CI."""

    @property
    def repository(self) -> str | None: ...

    @property
    def ci_environments(self) -> list[str]: ...


def check_pipeline_reach(actor: Actor, service: str, environment: str,
                         views: Sequence[CatalogReach], *, rule: str) -> None:
    """Refuse (403, naming ``rule``) a CI job's token acting on another repository's service
    (``check_pipeline_repository``), or in an environment the catalog does not allow its CI
    (``ci_environments``, when it names any). ``views``: the service's projection rows."""
    if actor.repository is None:
        return
    check_pipeline_repository(actor, service, [v.repository for v in views], rule=rule)
    allowed = sorted({e for v in views for e in v.ci_environments})
    if allowed and environment not in allowed:
        raise EnvironmentNotAllowed(rule, service, environment, allowed)


class EnvironmentNotAllowed(Forbidden):
    """A CI job's token deploys its service only to the environments the catalog allows its
    CI (``ci_environments``), when it names any."""

    code = "pipeline-environment"

    def __init__(self, rule: str, service: str, environment: str, allowed: list[str]) -> None:
        super().__init__(
            f"A pipeline may not {rule} a deployment of {service} to {environment}: the catalog "
            f"allows its CI only {', '.join(allowed)}.",
            rule=rule, service=service, environment=environment, allowed=allowed)
