"""The aggregate core: one locking policy, so of two concurrent writers exactly one wins, and
no two events about one aggregate ever share a sequence (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from sqlalchemy.exc import IntegrityError
from tests.shared.probe_service import NoteCreated, create_probe_app, create_schema, notes

from tandem.db import Database
from tandem.errors import NotFound
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers, running_service

PARALLEL = 8


async def _note(client, headers) -> dict:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/notes", json={"text": "race"}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_parallel_moves_with_one_if_match_have_exactly_one_winner(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    headers = auth_headers(platform, "practitioner")
    async with running_service(create_probe_app(platform, url)) as client, \
            TopicWatcher(platform, platform.topic("notes")) as watcher:
        note = await _note(client, headers)
        moves = [client.post(f"/api/v1/notes/{note['id']}/transitions",
                             json={"to": "published"},
                             headers={**headers, "If-Match": f'"{note["version"]}"'})
                 for _ in range(PARALLEL)]
        answers = await asyncio.gather(*moves)
        codes = Counter(r.status_code for r in answers)
        assert codes[200] == 1, codes
        assert codes[412] == PARALLEL - 1, codes
        stored = (await client.get(f"/api/v1/notes/{note['id']}", headers=headers)).json()
        assert stored["version"] == 2
        events = await watcher.wait_for(
            lambda evs: len([e for e in evs if e.subject == note["id"]]) >= 2)
        assert sorted(e.sequence for e in events if e.subject == note["id"]) == [1, 2]


async def test_parallel_moves_without_if_match_leave_one_history(
    platform: PlatformSettings, new_database
) -> None:
    """Each writer sees the state the one before it left: the first publishes, the next
    archives, the rest find no legal move (409). The topic holds one strictly increasing
    history, never two events with one sequence."""
    url = await new_database("notes")
    await create_schema(url)
    headers = auth_headers(platform, "practitioner")
    async with running_service(create_probe_app(platform, url)) as client, \
            TopicWatcher(platform, platform.topic("notes")) as watcher:
        note = await _note(client, headers)
        targets = ["published", "archived"] * (PARALLEL // 2)
        answers = await asyncio.gather(*(
            client.post(f"/api/v1/notes/{note['id']}/transitions", json={"to": to},
                        headers=headers) for to in targets))
        won = [to for to, r in zip(targets, answers, strict=True) if r.status_code == 200]
        assert set(Counter(r.status_code for r in answers)) <= {200, 409}
        assert won.count("published") == 1
        assert len(won) <= 2
        stored = (await client.get(f"/api/v1/notes/{note['id']}", headers=headers)).json()
        assert stored["version"] == 1 + len(won)
        events = await watcher.wait_for(
            lambda evs: len([e for e in evs if e.subject == note["id"]]) >= 1 + len(won))
        mine = [e for e in events if e.subject == note["id"]]
        assert [e.sequence for e in mine] == list(range(1, 2 + len(won)))
        assert [e.data["to"] for e in mine[1:]] == ["published", "archived"][:len(won)]


async def test_a_writer_that_skips_the_lock_cannot_publish_a_taken_sequence(
    platform: PlatformSettings, new_database
) -> None:
    """The outbox's unique (aggregate, sequence) is the backstop of the locking policy."""
    url = await new_database("notes")
    await create_schema(url)
    db = Database(url, topic=platform.topic("notes"))
    try:
        async with db.transaction() as session:
            note = await notes.new(session, text="twice")
            await notes.record(session, note, NoteCreated, actor="a")

        async def write_from_a_stale_read() -> None:
            async with db.transaction() as session:
                again = await notes.get(session, str(note.id))
                again.version = 0  # as if read before the first writer committed
                await notes.record(session, again, NoteCreated, actor="b")

        with pytest.raises(IntegrityError):
            await write_from_a_stale_read()
    finally:
        await db.dispose()


async def test_get_accepts_id_or_number_and_refuses_anything_else(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    db = Database(url, topic=platform.topic("notes"))
    try:
        async with db.transaction() as session:
            note = await notes.new(session, text="find me")
            await notes.record(session, note, NoteCreated, actor="a")
        async with db.transaction(read_only=True) as session:
            assert (await notes.get(session, note.number.lower())).id == note.id
            assert (await notes.get(session, str(note.id))).number == note.number
            for ref in ("NTE9999999", "x" * 300, "bad\x00ref"):
                with pytest.raises(NotFound):
                    await notes.get(session, ref)
    finally:
        await db.dispose()
