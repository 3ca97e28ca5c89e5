"""Dead letters people can work: every consuming service lists, shows, replays and discards the
messages its consumers could not (or would not) apply (contract section 10).

A consumer records a dead letter in its database (``dead_letter``, once per message however
often it is read again) and copies it to ``tandem.<service>.dlq``. ``dead`` letters failed their
handler or could not be read; ``held`` ones were held for review (a sequence far beyond the
subject's last). Replaying one applies it through the same inbox rules after a fix, so an event
applied meanwhile is a duplicate, not a second effect; discarding one records why.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
from aiokafka import ConsumerRecord
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from tandem import metrics
from tandem.auth import Manager
from tandem.db import Database, new_id, utcnow
from tandem.errors import Conflict, NotFound
from tandem.pagination import Cursor, Limit, Page, page
from tandem.tables import DeadLetter

if TYPE_CHECKING:
    from tandem.consumer import EventConsumer

_letters = DeadLetter.__table__  # type: ignore[attr-defined]
OPEN = ("dead", "held")


async def record_dead_letter(db: Database, *, consumer: str,
                             record: ConsumerRecord[bytes, bytes], error: BaseException,
                             attempts: int, status: str = "dead") -> None:
    """Keep ``record`` as a dead letter of ``consumer`` (a second call for it changes nothing)."""
    event = _peek(record.value)
    row = {
        "id": new_id(), "consumer": consumer, "topic": record.topic,
        "partition": record.partition, "offset": record.offset, "key": record.key,
        "value": record.value,
        "headers": [[k, v.decode("utf-8", "replace")] for k, v in record.headers or []],
        "event_id": event.get("id"), "event_type": _text(event.get("type"), 128),
        "subject": _text(event.get("subject"), 64), "sequence": event.get("sequence"),
        "status": status, "error_type": type(error).__name__[:128],
        "error": str(error)[:8000] or repr(error)[:8000], "attempts": attempts,
        "created_at": utcnow(),
    }
    async with db.transaction() as session:
        connection = await session.connection()
        insert = (postgresql.insert if connection.dialect.name == "postgresql"
                  else sqlite.insert)(_letters)
        result = await connection.execute(insert.on_conflict_do_nothing(), row)
    if result.rowcount:
        metrics.DEAD_LETTERS.labels(consumer).inc()


def _peek(value: bytes | None) -> dict[str, Any]:
    """What can be read of the envelope of a message that may not be an event at all."""
    try:
        event = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(event, dict):
        return {}
    out: dict[str, Any] = {}
    try:
        out["id"] = uuid.UUID(str(event.get("id")))
    except ValueError:
        pass
    if isinstance(event.get("sequence"), int) and 0 <= event["sequence"] < 2**62:
        out["sequence"] = event["sequence"]
    for name in ("type", "subject"):
        if isinstance(event.get(name), str):
            out[name] = event[name]
    return out


def _text(value: Any, limit: int) -> str | None:
    return value[:limit].replace("\x00", "") if isinstance(value, str) else None


async def count_open(db: Database, consumers: list[str]) -> None:
    """Set the dead-letter gauge of each consumer from its stored letters (0 when none)."""
    async with db.transaction(read_only=True) as session:
        counts = dict((await session.execute(
            select(DeadLetter.consumer, func.count()).where(
                DeadLetter.status.in_(OPEN))  # type: ignore[attr-defined]
            .group_by(DeadLetter.consumer))).all())
    for name in consumers:
        metrics.DEAD_LETTERS.labels(name).set(counts.get(name, 0))


# --- the API ----------------------------------------------------------------------------------


class DeadLetterPublic(BaseModel):
    """A dead letter as the API returns it; ``event`` is the message decoded when it is JSON."""

    id: uuid.UUID = Field(description="The dead letter's id.")
    consumer: str = Field(description="The consumer of this service that could not apply the "
                                      "message, such as `incidents-reactions`.")
    status: Literal["dead", "held", "replayed", "discarded"] = Field(
        description="dead: it failed every attempt; held: it was kept back for review (a gap "
                    "in its subject's sequence); replayed or discarded: an operator resolved "
                    "it.")
    topic: str = Field(description="The topic the message was read from, such as "
                                   "`tandem.deployments`.")
    partition: int = Field(description="The topic partition the message was read from.")
    offset: int = Field(description="The message's offset in its partition.")
    event_id: uuid.UUID | None = Field(
        description="The event's id (CloudEvents `id`); null when the message is no event.")
    event_type: str | None = Field(
        description="The event's type, such as `tandem.deployment.finished`; null when the "
                    "message is no event.")
    subject: str | None = Field(
        description="The id of the aggregate the event is about; null when it names none.")
    sequence: int | None = Field(
        description="The event's position in its subject's history; null when it has none.")
    error_type: str = Field(description="The kind of error the last attempt raised.")
    error: str = Field(description="The last attempt's error message.")
    attempts: int = Field(description="How many times applying it was tried.")
    note: str | None = Field(
        description="How it was resolved: the replay's outcome or the discard reason; null "
                    "while it is open.")
    created_at: datetime = Field(description="When the message became a dead letter.")
    resolved_at: datetime | None = Field(
        description="When it was replayed or discarded; null while it is open.")
    resolved_by: str | None = Field(
        description="Who replayed or discarded it; null while it is open.")


class DeadLetterDetail(DeadLetterPublic):
    key: str | None = Field(description="The message key (the aggregate id), as text.")
    event: Any = Field(description="The message value as JSON, when it is JSON.")
    value_base64: str | None = Field(description="The raw message value, base64.")
    headers: list[list[str]] = Field(
        description="The message headers, as `[name, value]` pairs (values as text).")


class ReplayOutcome(BaseModel):
    dead_letter: DeadLetterPublic = Field(description="The dead letter, now replayed.")
    outcome: Literal["applied", "duplicate", "stale", "ignored"] = Field(
        description="applied: its effect is now made; duplicate: it had been applied "
                    "meanwhile; stale: a newer event of its subject was applied; ignored: no "
                    "handler takes its type.")


def _public(row: DeadLetter) -> DeadLetterPublic:
    return DeadLetterPublic.model_validate(row, from_attributes=True)


def _detail(row: DeadLetter) -> DeadLetterDetail:
    try:
        event = orjson.loads(row.value or b"")
    except orjson.JSONDecodeError:
        event = None
    return DeadLetterDetail(
        **_public(row).model_dump(), key=(row.key or b"").decode("utf-8", "replace") or None,
        event=event, headers=row.headers,
        value_base64=base64.b64encode(row.value).decode() if row.value is not None else None)


async def _letter(session: AsyncSession, letter_id: uuid.UUID, *, lock: bool = False,
                  ) -> DeadLetter:
    stmt = select(DeadLetter).where(DeadLetter.id == letter_id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    row = (await session.scalars(stmt)).first()
    if row is None:
        raise NotFound("dead letter", letter_id)
    return row


class AlreadyResolved(Conflict):
    code = "dead-letter-resolved"


router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


#: The ``{letter_id}`` of a dead letter's path.
LetterId = Annotated[uuid.UUID, Path(description="The dead letter's id.",
                                     examples=["0195503e-7c1a-7d3e-9b2f-3c4d5e6f7a8b"])]


def _db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


@router.get("", response_model=Page[DeadLetterPublic])
async def list_dead_letters(
    request: Request, _: Manager,
    status: Annotated[Literal["open", "dead", "held", "replayed", "discarded"] | None,
                      Query(description="Only dead letters in this status; open (the "
                                        "default) is dead and held together.",
                            examples=["open"])] = "open",
    consumer: Annotated[str | None, Query(
        max_length=64, description="Only the dead letters of this consumer.",
        examples=["incidents-reactions"])] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[DeadLetterPublic]:
    """The service's dead letters, newest first, with their error and origin."""
    stmt = select(DeadLetter)
    if status == "open":
        stmt = stmt.where(DeadLetter.status.in_(OPEN))  # type: ignore[attr-defined]
    elif status is not None:
        stmt = stmt.where(DeadLetter.status == status)
    if consumer:
        stmt = stmt.where(DeadLetter.consumer == consumer)
    async with _db(request).transaction(read_only=True) as session:
        rows, next_cursor = await page(session, stmt, DeadLetter, limit=limit, cursor=cursor)
        return Page[DeadLetterPublic](items=[_public(r) for r in rows], next_cursor=next_cursor)


@router.get("/{letter_id}", response_model=DeadLetterDetail)
async def get_dead_letter(letter_id: LetterId, request: Request, _: Manager,
                          ) -> DeadLetterDetail:
    async with _db(request).transaction(read_only=True) as session:
        return _detail(await _letter(session, letter_id))


@router.post("/{letter_id}/replay", response_model=ReplayOutcome)
async def replay_dead_letter(letter_id: LetterId, request: Request, actor: Manager,
                             ) -> ReplayOutcome:
    """Apply the message again after a fix; its outcome says whether it had an effect."""
    db = _db(request)
    async with db.transaction(read_only=True) as session:
        row = await _letter(session, letter_id)
    if row.status not in OPEN:
        raise AlreadyResolved(f"Dead letter {letter_id} is already {row.status}.",
                              current=row.status)
    consumer = _consumer(request, row.consumer)
    try:
        outcome = await consumer.replay(row.value or b"")
    except Exception as exc:
        async with db.transaction() as session:
            row = await _letter(session, letter_id, lock=True)
            row.attempts += 1
            row.error_type, row.error = type(exc).__name__[:128], str(exc)[:8000] or repr(exc)
        raise ReplayFailed(f"Dead letter {letter_id} still cannot be applied: "
                           f"{type(exc).__name__}: {str(exc)[:500]}") from None
    return ReplayOutcome(dead_letter=await _resolve(db, letter_id, "replayed",
                                                    f"replay: {outcome}", actor.sub),
                         outcome=outcome)  # type: ignore[arg-type]


@router.delete("/{letter_id}", response_model=DeadLetterPublic)
async def discard_dead_letter(
    letter_id: LetterId, request: Request, actor: Manager,
    reason: Annotated[str, Query(min_length=1, max_length=2000,
                                 description="Why it is discarded (kept with it as its "
                                             "note).",
                                 examples=["Test event from a retired pipeline"])],
) -> DeadLetterPublic:
    """Discard the message with a reason; it stays listed under ``status=discarded``."""
    return await _resolve(_db(request), letter_id, "discarded", reason, actor.sub)


class ReplayFailed(Conflict):
    code = "replay-failed"


async def _resolve(db: Database, letter_id: uuid.UUID, status: str, note: str,
                   actor: str) -> DeadLetterPublic:
    async with db.transaction() as session:
        row = await _letter(session, letter_id, lock=True)
        if row.status not in OPEN:
            raise AlreadyResolved(f"Dead letter {letter_id} is already {row.status}.",
                                  current=row.status)
        row.status, row.note = status, note
        row.resolved_at, row.resolved_by = utcnow(), actor
        public = _public(row)
    metrics.DEAD_LETTERS.labels(row.consumer).dec()
    return public


def _consumer(request: Request, name: str) -> EventConsumer:
    for consumer in request.app.state.runtime.consumers:
        if consumer.name == name:
            return consumer  # type: ignore[no-any-return]
    raise NotFound("consumer", name)
