"""HTTP conventions shared by every service: JSON responses with ETag, If-Match, Idempotency-Key."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tandem.auth import Actor, authenticate
from tandem.db import Prepared, utcnow
from tandem.errors import StaleVersion
from tandem.problems import Problem
from tandem.tables import IdempotencyRecord

_idempotency = IdempotencyRecord.__table__  # type: ignore[attr-defined]
#: A create looks its key up first every time, and remembers its answer: prepared statements
#: (the ORM's identity map and row loading cost more than the lookup).
_REMEMBERED = Prepared(select(_idempotency).where(_idempotency.c.key == bindparam("idem_key"),
                                                  _idempotency.c.actor == bindparam("who")))
_REMEMBER = Prepared(insert(_idempotency))


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, BaseModel):
            return orjson.dumps(content.model_dump(mode="json"))
        return orjson.dumps(content)


def resource_response(
    model: BaseModel, *, status: int = 200, location: str | None = None,
    body: dict[str, Any] | None = None,
) -> JSONBody:
    """A resource answer carrying ``ETag: "<version>"`` (and ``Location`` when created);
    ``body`` is the model already dumped, when the caller has it."""
    headers = {}
    if (version := getattr(model, "version", None)) is not None:
        headers["ETag"] = f'"{version}"'
    if location:
        headers["Location"] = location
    return JSONBody(model if body is None else body, status_code=status, headers=headers)


def check_if_match(request: Request, version: int) -> None:
    """:class:`StaleVersion` (412) when the client's ``If-Match`` names another version than
    the stored one. Called on the row read under the write lock (``tandem.aggregate``), so of
    two writers holding the same ``If-Match`` exactly one passes."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    if str(version) not in tags:
        raise StaleVersion(version, header.strip()[:40])


class IdempotentCreate:
    """A creating POST's ``Idempotency-Key``: replays the first answer for a retry."""

    def __init__(self, key: str | None, actor: str, route: str, fingerprint: str) -> None:
        self.key = key
        self.actor = actor
        self.route = route
        self.fingerprint = fingerprint

    async def replay(self, session: AsyncSession) -> JSONBody | None:
        if self.key is None:
            return None
        found = await _REMEMBERED.run(session, {"idem_key": self.key, "who": self.actor})
        if not found:
            return None
        record = found[0]
        if record.fingerprint != self.fingerprint or record.route != self.route:
            raise Problem(
                422,
                "This Idempotency-Key was used with another request body.",
                type_="urn:tandem:problem:idempotency-key-reused",
            )
        headers = {"Idempotent-Replayed": "true"}
        if record.location:
            headers["Location"] = record.location
        if (version := record.response.get("version")) is not None:
            headers["ETag"] = f'"{version}"'
        return JSONBody(record.response, status_code=record.status_code, headers=headers)

    async def respond(
        self,
        session: AsyncSession,
        model: BaseModel,
        *,
        status: int = 201,
        location: str | None = None,
    ) -> JSONBody:
        """The answer for the first request, remembered with the key in the same transaction
        (the body serialized once, for the record and the answer)."""
        if self.key is None:
            return resource_response(model, status=status, location=location)
        body = model.model_dump(mode="json")
        await _REMEMBER.run(session, {
            "key": self.key, "actor": self.actor, "route": self.route,
            "fingerprint": self.fingerprint, "status_code": status, "response": body,
            "location": location, "created_at": utcnow()})
        return resource_response(model, status=status, location=location, body=body)


async def idempotent_create(
    request: Request, actor: Annotated[Actor, Depends(authenticate)]
) -> IdempotentCreate:
    key = request.headers.get("idempotency-key")
    if key is not None and not (1 <= len(key) <= 255):
        raise Problem(400, "Idempotency-Key must be 1 to 255 characters.")
    body = await request.body() if key is not None else b""
    return IdempotentCreate(
        key, actor.sub, f"{request.method} {request.url.path}", hashlib.sha256(body).hexdigest()
    )


Idempotency = Annotated[IdempotentCreate, Depends(idempotent_create)]
