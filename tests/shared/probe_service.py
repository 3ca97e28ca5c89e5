"""A small service built only from the shared library, to test the platform by itself.

It owns ``notes`` (create, get, list, transitions) on topic ``tandem.notes`` and reacts to
events on ``tandem.signals`` by recording an effect row, so each platform mechanism is
exercised without depending on a real service's rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from tandem.aggregate import Aggregate, AggregateColumns, EventData
from tandem.app import Reaction, ServiceSpec, Session, create_service_app
from tandem.auth import Reader, Worker
from tandem.db import Database
from tandem.events import CloudEvent, new_event
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.pagination import page
from tandem.settings import PlatformSettings, ServiceSettings
from tandem.tables import (
    DeadLetter,
    IdempotencyRecord,
    InboxEntry,
    NumberSequence,
    OutboxMessage,
    RelayMark,
    RevokedToken,
    SubjectCursor,
)
from tandem.transitions import StateMachine

NOTE_LIFECYCLE = StateMachine("note", {"draft": {"published"}, "published": {"archived"}})


class NotesSettings(ServiceSettings):
    service: ClassVar[str] = "notes"


class ProbeNote(AggregateColumns, table=True):
    __tablename__ = "probe_note"

    text: str
    status: str = "draft"


class ProbeEffect(SQLModel, table=True):
    """One row per applied signal: the effect whose count proves exactly-once."""

    __tablename__ = "probe_effect"

    id: int | None = Column(default=None, primary_key=True)
    event_id: uuid.UUID
    subject: str


class NoteCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, max_length=500)


class NotePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: uuid.UUID
    number: str
    text: str
    status: str
    allowed_transitions: list[str]
    version: int
    created_at: datetime
    updated_at: datetime


class NotesPage(BaseModel):
    items: list[NotePublic]
    next_cursor: str | None


class Move(BaseModel):
    to: str
    reason: str = ""


class NoteCreated(EventData):
    event_type: ClassVar[str] = "tandem.note.created"
    note: NotePublic


class NoteTransitioned(EventData):
    event_type: ClassVar[str] = "tandem.note.transitioned"
    note: NotePublic
    from_: str = Field(alias="from")
    to: str
    reason: str


def public(note: ProbeNote) -> NotePublic:
    return NotePublic.model_validate(
        {**note.model_dump(), "allowed_transitions": NOTE_LIFECYCLE.allowed(note.status)}
    )


class NoteAggregate(Aggregate[ProbeNote, NotePublic]):
    async def snapshot(self, session: AsyncSession, row: ProbeNote) -> NotePublic:
        return public(row)


notes = NoteAggregate(ProbeNote, name="note", service="notes", number_prefix="NTE")

router = APIRouter(prefix="/api/v1/notes")


@router.post("", status_code=201)
async def create(
    body: NoteCreate, session: Session, actor: Worker, idem: Idempotency
) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    note = await notes.new(session, text=body.text)
    snapshot = await notes.record(session, note, NoteCreated, actor=actor.sub)
    return await idem.respond(session, snapshot, location=f"/api/v1/notes/{note.id}")


@router.get("")
async def list_notes(
    session: Session,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> NotesPage:
    items, nxt = await page(session, select(ProbeNote), ProbeNote, limit=limit, cursor=cursor)
    return NotesPage(items=[public(n) for n in items], next_cursor=nxt)


@router.get("/{ref}")
async def get(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(public(await notes.get(session, ref)))


@router.post("/{ref}/transitions")
async def move(
    ref: str, body: Move, request: Request, session: Session, actor: Worker
) -> JSONBody:
    note = await notes.get(session, ref, for_update=True)
    check_if_match(request, note.version)
    NOTE_LIFECYCLE.check(note.status, body.to)
    before, note.status = note.status, body.to
    snapshot = await notes.record(session, note, NoteTransitioned, actor=actor.sub,
                                  from_=before, to=body.to, reason=body.reason)
    return resource_response(snapshot)


async def record_signal(session: AsyncSession, event: CloudEvent,
                        settings: NotesSettings | None = None) -> None:
    if event.data.get("fail"):
        raise RuntimeError("this signal always fails")
    session.add(ProbeEffect(event_id=event.id, subject=event.subject))


HANDLERS = {"tandem.signal.sent": record_signal}
PLATFORM_TABLES = [OutboxMessage, InboxEntry, SubjectCursor, IdempotencyRecord, NumberSequence,
                   DeadLetter, RelayMark, RevokedToken]


async def create_schema(url: str) -> None:
    """Tests only: the probe's tables straight from the models."""
    db = Database(url)
    tables = [t.__table__ for t in (*PLATFORM_TABLES, ProbeNote, ProbeEffect)]  # type: ignore[attr-defined]
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=tables))
    await db.dispose()


def create_probe_app(platform: PlatformSettings, url: str):  # type: ignore[no-untyped-def]
    spec = ServiceSpec(
        title="probe",
        settings=NotesSettings(database_url=url),
        routers=[router],
        reactions=[Reaction(topics=["signals"], handlers=HANDLERS)],
    )
    return create_service_app(spec, platform)


async def effects(url: str) -> list[ProbeEffect]:
    db = Database(url)
    async with db.sessionmaker() as s:
        rows = list((await s.scalars(select(ProbeEffect))).all())
    await db.dispose()
    return rows


def signal(subject: str, sequence: int, **data: object) -> CloudEvent:
    return new_event(
        service="signals",
        type="tandem.signal.sent",
        subject=subject,
        sequence=sequence,
        actor="test",
        data=dict(data),
    )
