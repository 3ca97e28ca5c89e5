"""A small service built only from the shared library, to test the platform by itself.

It owns ``notes`` (create, get, list, transitions) on topic ``tandem.notes`` and reacts to
events on ``tandem.signals`` by recording an effect row, so each platform mechanism is
exercised without depending on a real service's rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field as Column
from sqlmodel import SQLModel

from tandem.app import Reaction, Runtime, ServiceSpec, Session, create_service_app
from tandem.auth import Reader, Worker
from tandem.db import Database, UTCDateTime, new_id, utcnow
from tandem.events import CloudEvent, new_event
from tandem.http import Idempotency, JSONBody, check_if_match, resource_response
from tandem.numbers import next_number
from tandem.outbox import add_event
from tandem.pagination import page
from tandem.problems import not_found
from tandem.settings import PlatformSettings
from tandem.tables import (
    IdempotencyRecord,
    InboxEntry,
    NumberSequence,
    OutboxMessage,
    SubjectCursor,
)
from tandem.transitions import StateMachine

NOTE_LIFECYCLE = StateMachine("note", {"draft": {"published"}, "published": {"archived"}})


class ProbeNote(SQLModel, table=True):
    __tablename__ = "probe_note"

    id: uuid.UUID = Column(default_factory=new_id, primary_key=True)
    number: str = Column(unique=True)
    text: str
    status: str = "draft"
    version: int = 1
    created_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Column(default_factory=utcnow, sa_type=UTCDateTime)


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


def public(note: ProbeNote) -> NotePublic:
    return NotePublic.model_validate(
        {**note.model_dump(), "allowed_transitions": NOTE_LIFECYCLE.allowed(note.status)}
    )


def emit(session: AsyncSession, rt: Runtime, note: ProbeNote, verb: str, actor: str) -> None:
    event = new_event(
        service="notes",
        type=f"tandem.note.{verb}",
        subject=note.id,
        sequence=note.version,
        actor=actor,
        data={"note": public(note).model_dump(mode="json")},
    )
    add_event(session, topic=rt.platform.topic("notes"), event=event)


router = APIRouter(prefix="/api/v1/notes")


@router.post("", status_code=201)
async def create(
    body: NoteCreate, session: Session, rt: Runtime, actor: Worker, idem: Idempotency
) -> JSONBody:
    if (replay := await idem.replay(session)) is not None:
        return replay
    note = ProbeNote(number=await next_number(session, "NTE"), text=body.text)
    session.add(note)
    emit(session, rt, note, "created", actor.sub)
    return idem.respond(session, public(note), location=f"/api/v1/notes/{note.id}")


@router.get("")
async def list_notes(
    session: Session,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> NotesPage:
    items, nxt = await page(session, select(ProbeNote), ProbeNote, limit=limit, cursor=cursor)
    return NotesPage(items=[public(n) for n in items], next_cursor=nxt)


async def _get(session: AsyncSession, ref: str) -> ProbeNote:
    try:
        note = await session.get(ProbeNote, uuid.UUID(ref))
    except ValueError:
        note = (await session.scalars(select(ProbeNote).where(ProbeNote.number == ref))).first()
    if note is None:
        raise not_found("note", ref)
    return note


@router.get("/{ref}")
async def get(ref: str, session: Session, _: Reader) -> JSONBody:
    return resource_response(public(await _get(session, ref)))


@router.post("/{ref}/transitions")
async def move(
    ref: str, body: Move, request: Request, session: Session, rt: Runtime, actor: Worker
) -> JSONBody:
    note = await _get(session, ref)
    check_if_match(request, note.version)
    NOTE_LIFECYCLE.check(note.status, body.to)
    note.status = body.to
    note.version += 1
    note.updated_at = utcnow()
    emit(session, rt, note, "transitioned", actor.sub)
    return resource_response(public(note))


async def record_signal(session: AsyncSession, event: CloudEvent) -> None:
    if event.data.get("fail"):
        raise RuntimeError("this signal always fails")
    session.add(ProbeEffect(event_id=event.id, subject=event.subject))


HANDLERS = {"tandem.signal.sent": record_signal}
PLATFORM_TABLES = [OutboxMessage, InboxEntry, SubjectCursor, IdempotencyRecord, NumberSequence]


async def create_schema(url: str) -> None:
    """Tests only: the probe's tables straight from the models."""
    db = Database(url)
    tables = [t.__table__ for t in (*PLATFORM_TABLES, ProbeNote, ProbeEffect)]  # type: ignore[attr-defined]
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda c: SQLModel.metadata.create_all(c, tables=tables))
    await db.dispose()


def create_probe_app(platform: PlatformSettings, url: str):  # type: ignore[no-untyped-def]
    spec = ServiceSpec(
        name="notes",
        title="probe",
        database_url=url,
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
