"""Notes on an incident: each is an ``annotated`` event on its timeline (kind ``note`` from
people, ``alert`` for a monitor's repeat, ``deployment`` for an S2 fact)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from incidents import events, timeline
from incidents.errors import NoteNotFound
from incidents.incident import incidents
from incidents.models import Incident
from incidents.schemas import Note
from tandem.db import new_id, utcnow

NoteKind = Literal["note", "alert", "deployment"]


async def add_note(session: AsyncSession, incident: Incident, text: str, *, actor: str,
                   kind: NoteKind = "note", details: dict[str, Any] | None = None) -> Note:
    """Annotate ``incident`` (read for update, or new in this transaction)."""
    now = utcnow()
    note = Note(id=new_id(), incident_id=incident.id, kind=kind, text=text, author=actor,
                created_at=now, details=details)
    await incidents.record(session, incident, events.IncidentAnnotated, actor=actor, now=now,
                           note=note)
    return note


async def notes_of(session: AsyncSession, incident: Incident) -> list[Note]:
    """The incident's notes, oldest first."""
    rows = await timeline.entries(session, incident.id, type_=events.IncidentAnnotated.event_type)
    return [Note.model_validate(row.data["note"]) for row in rows]


async def note_of(session: AsyncSession, incident: Incident, note_id: str) -> Note:
    """One note of the incident; :class:`NoteNotFound` otherwise."""
    for note in await notes_of(session, incident):
        if str(note.id) == note_id:
            return note
    raise NoteNotFound(incident.number, note_id)
