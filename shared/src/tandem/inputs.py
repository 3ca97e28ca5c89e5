"""Input no service can store, refused at the door with a 422 naming the field.

A JSON body under ``/api/`` may not hold non-finite numbers (``NaN``, ``Infinity``, ``1e400``:
Python's parser accepts them, no database column or event can carry them), unpaired UTF-16
surrogates (``"\\ud800"``: not Unicode, so not encodable in an answer or an event) or NUL
characters (PostgreSQL text cannot hold one, and an event carrying one is refused by every
consumer). Paths and query strings may not hold NUL or surrogates either. Everything else
reaches the handlers untouched; a body that is not JSON at all is left to their own 422.

The check costs one strict parse (orjson) of bodies that pass, which rejects the first two
kinds by itself; only a body that fails it, or that spells a NUL, is walked to name the field.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar
from urllib.parse import unquote_to_bytes

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    model_validator,
)
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import CoreSchema
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tandem.problems import Problem, problem_response

_WRITES = frozenset({"POST", "PUT", "PATCH"})


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _written_time(value: Any) -> Any:
    """A time is written as RFC 3339 text; a bare number (which the parser would read as seconds
    since 1970) is refused, so ``since=0.5`` is no accident that means 1970."""
    if isinstance(value, bool | int | float) or (isinstance(value, str)
                                                  and _NUMBER.fullmatch(value)):
        raise ValueError("must be an RFC 3339 date-time with its offset, such as "
                         "2026-03-01T10:00:00Z")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 has no UTC time
        raise ValueError("is outside the range of dates") from None


#: A client's time: RFC 3339 text with an offset (``2026-03-01T10:00:00Z``), kept in UTC.
Moment = Annotated[AwareDatetime, BeforeValidator(_written_time), AfterValidator(_in_utc)]


class Input(BaseModel):
    """A request body: unknown fields refused, text trimmed, text no service can store (a NUL
    character, an unpaired surrogate) refused, wherever the body came from."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = unstorable(data)
        if found:
            raise ValueError(f"{found[0]} {found[1]}")
        return data


class Patch(BaseModel):
    """A PATCH body: only the fields given change. The fields named in ``never_null`` may be
    left out but not set to null (they always have a value); the schema says so too."""

    never_null: ClassVar[tuple[str, ...]] = ()

    def given(self) -> dict[str, Any]:
        """The fields the client gave, as JSON values; a nested object given is whole, its
        defaults included (a link without a title has ``title: null``)."""
        dumped = self.model_dump(mode="json")
        return {name: dumped[name] for name in self.model_fields_set}

    @model_validator(mode="after")
    def _kept_set(self) -> Any:
        for name in self.never_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        for name in cls.never_null:
            prop = target.get("properties", {}).get(name)
            if prop is None or "anyOf" not in prop:
                continue
            kinds = [kind for kind in prop.pop("anyOf") if kind.get("type") != "null"]
            prop.pop("default", None)
            if len(kinds) == 1:
                prop.update(kinds[0])
            else:
                prop["anyOf"] = kinds
        return schema


def at_least_one_of(*names: str) -> dict[str, Any]:
    """The JSON Schema of a body that must give one of ``names`` a value (not null), for a
    model's ``json_schema_extra``; the model's own validator says the same to the client."""
    return {"anyOf": [{"required": [name], "properties": {name: {"not": {"type": "null"}}}}
                      for name in names]}


def together(*names: str) -> dict[str, Any]:
    """The JSON Schema of a body whose fields ``names`` are given together or not at all (a
    window's two ends), for a model's ``json_schema_extra``."""
    return {"anyOf": [
        {"properties": {name: {"type": "null"} for name in names}},
        {"required": list(names), "properties": {name: {"not": {"type": "null"}}
                                                 for name in names}},
    ]}


def fields_of_moves(moves: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """The JSON Schema of a transition body whose fields belong to one move each: a move
    ``to`` a state of ``moves`` needs its fields (not null), any other move leaves them out (or
    null). For a model's ``json_schema_extra``; the state machine's check says the same."""
    rules = []
    for state, names in moves.items():
        rules.append({
            "if": {"required": ["to"], "properties": {"to": {"const": state}}},
            "then": {"required": list(names),
                     "properties": {name: {"not": {"type": "null"}} for name in names}},
            "else": {"properties": {name: {"type": "null"} for name in names}},
        })
    return {"allOf": rules}


def unstorable(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first place in parsed JSON ``value`` that no service can store, and why."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "body", "must be a finite number"
    if isinstance(value, str):
        return _bad_text(value, where or "body")
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found = _bad_text(str(key), path) or unstorable(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable(item, f"{where}.{index}" if where else str(index))
            if found:
                return found
    return None


def _bad_text(text: str, where: str) -> tuple[str, str] | None:
    if "\x00" in text:
        return where, "must not contain NUL characters"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return where, "must be valid Unicode text (an unpaired surrogate is not)"
    return None


def check_json_body(body: bytes) -> tuple[str, str] | None:
    """``(field, message)`` when a JSON body holds what no service can store, else None."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            lenient = json.loads(body)
        except ValueError:
            return None  # not JSON at all: the handler's own validation says so
        return unstorable(lenient)
    if b"\\u0000" in body:
        return unstorable(parsed)
    return None


def check_target(scope: Scope) -> tuple[str, str] | None:
    """``(field, message)`` for a NUL or a surrogate in the path or a query parameter."""
    found = _bad_text(scope.get("path", ""), "path")
    if found:
        return found
    query = scope.get("query_string", b"")
    if b"%" not in query and b"\x00" not in query:
        return None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        raw = unquote_to_bytes(value.replace(b"+", b" "))
        label = unquote_to_bytes(name).decode("utf-8", "replace") or "query"
        if b"\x00" in raw or b"\x00" in unquote_to_bytes(name):
            return label, "must not contain NUL characters"
    return None


def _refusal(field: str, message: str) -> Problem:
    return Problem(422, f"The request is not valid: {field}: {message}",
                   type_="urn:tandem:problem:validation",
                   errors=[{"field": field, "message": message}])


class InputGuard:
    """The ASGI layer that applies these checks before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = check_target(scope)
        if found is None and scope["method"] in _WRITES and scope["path"].startswith("/api/") \
                and _is_json(scope):
            body = await _read_body(receive)
            found = check_json_body(body)
            receive = _replay(body, receive)
        if found is not None:
            await problem_response(_refusal(*found))(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return True  # FastAPI parses a body without a content type as JSON too


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
