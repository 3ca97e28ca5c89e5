"""JWT bearer authentication (HS256, shared secret) and the five Tandem roles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from tandem.db import utcnow
from tandem.problems import Problem


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
    sub: str
    role: Role


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


def mint_token(secret: str, *, sub: str, role: Role | str, ttl: timedelta) -> str:
    if not valid_actor(sub):
        raise ValueError("sub must be 1 to 255 printable characters, with no surrounding spaces")
    now = utcnow()
    claims = {"sub": sub, "role": Role(role).value, "iat": now, "exp": now + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="tandem"'},
        type_="urn:tandem:problem:unauthorized",
    )


def decode_token(secret: str, token: str) -> Actor:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise _unauthorized("The token has expired.") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("The token is not valid.") from None
    if not valid_actor(claims["sub"]):
        raise _unauthorized("The token's sub cannot name an actor (1 to 255 printable "
                            "characters).")
    try:
        return Actor(sub=claims["sub"], role=Role(claims.get("role")))
    except ValueError:
        raise _unauthorized("The token names no known role.") from None


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


# The dependencies are ``async def``: FastAPI runs a plain ``def`` dependency on a worker
# thread, a hand-off that cost more than the token check on every request.
async def authenticate(request: Request,
                       _scheme: Annotated[object, Depends(BEARER)]) -> Actor:
    # ``BEARER`` declares the scheme in the OpenAPI document; the header is read here, so a
    # wrong one is a 401 problem that says what is wrong.
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("A bearer token is required.")
    actor = decode_token(request.app.state.jwt_secret, token)
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
