"""The CloudEvents 1.0 envelope every Tandem event travels in (structured mode)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from tandem.db import new_id, utcnow

CONTENT_TYPE = "application/cloudevents+json"
SCHEMA_VERSION = 1


class CloudEvent(BaseModel):
    """A fact about one aggregate; ``subject`` is its id and ``sequence`` its version after."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: uuid.UUID = Field(default_factory=new_id)
    source: str = Field(pattern=r"^/tandem/[a-z]+$")
    type: str = Field(pattern=r"^tandem\.[a-z_]+\.[a-z_]+$")
    subject: str = Field(min_length=1, max_length=64)
    time: datetime = Field(default_factory=utcnow)
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    sequence: int = Field(ge=1)
    actor: str = Field(min_length=1, max_length=255)
    traceparent: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"
    )
    data: dict[str, Any]

    @property
    def aggregate(self) -> str:
        """``incident`` for ``tandem.incident.created``."""
        return self.type.split(".")[1]

    def to_bytes(self) -> bytes:
        # An absent optional attribute (traceparent) is left out; ``data`` keeps its nulls,
        # since it carries the snapshot exactly as the API returns it.
        event = self.model_dump(mode="json")
        if event["traceparent"] is None:
            del event["traceparent"]
        return orjson.dumps(event)

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


def schema_uri(event_type: str, version: int = SCHEMA_VERSION) -> str:
    return f"urn:tandem:schema:{event_type}:v{version}"


def new_event(
    *,
    service: str,
    type: str,
    subject: uuid.UUID | str,
    sequence: int,
    actor: str,
    data: dict[str, Any],
    traceparent: str | None = None,
) -> CloudEvent:
    """Build an event of ``service`` (``incidents``) of ``type`` (``tandem.incident.created``)."""
    return CloudEvent(
        source=f"/tandem/{service}",
        type=type,
        subject=str(subject),
        dataschema=schema_uri(type),
        sequence=sequence,
        actor=actor,
        data=data,
        traceparent=traceparent,
    )
