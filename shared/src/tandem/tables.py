"""The platform's own tables, present in every service's database.

Each service's first migration creates them with :func:`tandem.migrations.create_platform_tables`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, text
from sqlmodel import Field, SQLModel

from tandem.db import JSONType, UTCDateTime, utcnow

_BigId = BigInteger().with_variant(Integer(), "sqlite")


class OutboxMessage(SQLModel, table=True):
    """An event waiting to be relayed, written in the transaction of the change it describes.

    The column names follow Debezium's outbox router, so change data capture can replace the
    polling relay without a migration.
    """

    __tablename__ = "outbox"
    # No two events about one aggregate share a sequence: the backstop of the locking policy.
    __table_args__ = (
        Index("uq_outbox_aggregate_sequence", "aggregate_id", "sequence", unique=True),
        # Unpublished rows are what the relay reads; a partial index keeps that scan small.
        Index("ix_outbox_unpublished", "seq", sqlite_where=text("published_at IS NULL"),
              postgresql_where=text("published_at IS NULL")),
    )

    seq: int | None = Field(
        default=None, sa_column=Column(_BigId, primary_key=True, autoincrement=True)
    )
    id: uuid.UUID = Field(unique=True)
    topic: str = Field(max_length=255)
    aggregate_type: str = Field(max_length=64)
    aggregate_id: str = Field(max_length=64)
    #: The aggregate's version after the change (the event's ``sequence``).
    sequence: int | None = None
    event_type: str = Field(max_length=128)
    payload: bytes
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has applied; inserted in the same transaction as the effect."""

    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=64)
    event_id: uuid.UUID = Field(primary_key=True)
    event_type: str = Field(max_length=128)
    subject: str = Field(max_length=64)
    sequence: int
    processed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class SubjectCursor(SQLModel, table=True):
    """The highest event ``sequence`` a consumer has applied for one aggregate."""

    __tablename__ = "subject_cursor"

    consumer: str = Field(primary_key=True, max_length=64)
    subject: str = Field(primary_key=True, max_length=64)
    last_sequence: int


class IdempotencyRecord(SQLModel, table=True):
    """The first response to a creating POST, replayed for a retry with the same key."""

    __tablename__ = "idempotency_key"

    key: str = Field(primary_key=True, max_length=255)
    actor: str = Field(primary_key=True, max_length=255)
    route: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] = Field(sa_column=Column(JSONType, nullable=False))
    location: str | None = Field(default=None, sa_column=Column(String(512), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NumberSequence(SQLModel, table=True):
    """The last human number handed out per prefix (``INC``, ``CHG``, ``DEP``)."""

    __tablename__ = "number_sequence"

    prefix: str = Field(primary_key=True, max_length=8)
    last_value: int


class DeadLetter(SQLModel, table=True):
    """A consumed message the service could not (or would not) apply, kept until a person
    replays or discards it. The dead-letter topic carries a copy; this row is the one worked."""

    __tablename__ = "dead_letter"
    # A message read again after a crash is recorded once.
    __table_args__ = (Index("uq_dead_letter_origin", "consumer", "topic", "partition", "offset",
                            unique=True),)

    id: uuid.UUID = Field(primary_key=True)
    consumer: str = Field(max_length=64)
    topic: str = Field(max_length=255)
    partition: int
    offset: int = Field(sa_column=Column(_BigId, nullable=False))
    key: bytes | None = None
    value: bytes | None = None
    headers: list[list[str]] = Field(default_factory=list, sa_column=Column(JSONType,
                                                                          nullable=False))
    event_id: uuid.UUID | None = None
    event_type: str | None = Field(default=None, max_length=128)
    subject: str | None = Field(default=None, max_length=64)
    sequence: int | None = Field(default=None, sa_column=Column(_BigId, nullable=True))
    #: ``dead`` (could not be applied), ``held`` (held for review), ``replayed``, ``discarded``.
    status: str = Field(max_length=16, index=True)
    error_type: str = Field(max_length=128)
    error: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = 1
    #: Why it was discarded, or what its replay found.
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_by: str | None = Field(default=None, max_length=255)


class RelayMark(SQLModel, table=True):
    """The highest offset the broker acknowledged per partition of the service's topic, and when:
    a broker whose partition ends below it has lost events the outbox says were published."""

    __tablename__ = "relay_mark"

    topic: str = Field(primary_key=True, max_length=255)
    partition: int = Field(primary_key=True)
    offset: int = Field(sa_column=Column(_BigId, nullable=False))
    acknowledged_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RevokedToken(SQLModel, table=True):
    """A token ``jti`` revoked (``tandem token revoke``), refused until the token would have
    expired anyway; written by every service's consumer of the revocation events."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=255)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
