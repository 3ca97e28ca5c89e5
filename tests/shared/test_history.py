"""The outbox is the durable history: a broker that lost what it acknowledged gets the retained
events again, in order, and a replay on request does the same (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from tests.shared.probe_service import create_probe_app, create_schema

from tandem.db import Database, utcnow
from tandem.settings import PlatformSettings
from tandem.tables import InboxEntry, OutboxMessage
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import TopicWatcher, auth_headers, eventually, running_service


async def _write_notes(client, headers, n: int, *,  # type: ignore[no-untyped-def]
                       publish: bool = False) -> list[str]:
    ids = []
    for i in range(n):
        r = await client.post("/api/v1/notes", json={"text": f"note {i}"}, headers=headers)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        if publish:
            moved = await client.post(f"/api/v1/notes/{ids[-1]}/transitions",
                                      json={"to": "published"}, headers=headers)
            assert moved.status_code == 200, moved.text
    return ids


async def test_a_new_empty_broker_gets_the_whole_retained_history_in_order(
    platform: PlatformSettings, new_database, tmp_path
) -> None:
    port = free_port()
    own = platform.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}",
                                      "history_check_interval_s": 0.2})
    url = await new_database("notes")
    await create_schema(url)
    headers = auth_headers(own, "practitioner")
    broker = EmbeddedBroker(port, log_path=tmp_path / "first.log")
    broker.start()
    try:
        async with running_service(create_probe_app(own, url)) as client:
            before = await _write_notes(client, headers, 4, publish=True)
            async with TopicWatcher(own, own.topic("notes")) as watcher:
                await watcher.wait_for(lambda evs: len(evs) >= 8, timeout=30)
            # The broker dies with everything it held (memory storage) and a new one starts.
            broker.stop()
            broker = EmbeddedBroker(port, log_path=tmp_path / "second.log")
            broker.start()
            after = await _write_notes(client, headers, 2)
            async with TopicWatcher(own, own.topic("notes")) as watcher:
                events = await watcher.wait_for(
                    lambda evs: {e.subject for e in evs} >= set(before + after), timeout=60)
                events = await watcher.wait_for(lambda evs: len(evs) >= 2 * len(before)
                                                + len(after), timeout=30)
            # Each note's events are on the new broker once, in their order.
            for note in before:
                assert [e.sequence for e in events if e.subject == note] == [1, 2]
            for note in after:
                assert [e.sequence for e in events if e.subject == note] == [1]
    finally:
        broker.stop()


async def test_replay_on_request_publishes_the_retained_events_since_a_time(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    headers = auth_headers(platform, "owner")
    app = create_probe_app(platform, url)
    async with running_service(app) as client, \
            TopicWatcher(platform, platform.topic("notes")) as watcher:
        ids = await _write_notes(client, headers, 3)
        await watcher.wait_for(lambda evs: len(evs) >= 3)
        relay = app.state.runtime.relay
        await eventually(lambda: _all_published(relay.db))
        count = await relay.republish(since=utcnow() - timedelta(hours=1))
        assert count == 3
        events = await watcher.wait_for(lambda evs: len(evs) >= 6)
        assert sorted(e.subject for e in events) == sorted(ids * 2)


async def _all_published(db: Database) -> bool:
    async with db.transaction(read_only=True) as session:
        pending = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.published_at.is_(None)))  # type: ignore[union-attr]
    return pending == 0


async def test_history_past_the_retention_is_forgotten(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    headers = auth_headers(platform, "owner")
    app = create_probe_app(platform, url)
    async with running_service(app) as client:
        await _write_notes(client, headers, 2)
        relay = app.state.runtime.relay
        await eventually(lambda: _all_published(relay.db))
        async with relay.db.transaction() as session:
            old = utcnow() - relay.retention - timedelta(days=2)
            first = (await session.scalars(select(OutboxMessage.seq).order_by(
                OutboxMessage.seq))).first()  # type: ignore[arg-type]
            await session.execute(update(OutboxMessage).where(OutboxMessage.seq == first)
                                  .values(published_at=old, created_at=old))
            session.add(InboxEntry(consumer="c", event_id=uuid.uuid4(),
                                   event_type="t", subject="s", sequence=1, processed_at=old))
        assert await relay.prune() == 1
        async with relay.db.transaction(read_only=True) as session:
            assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 1
            assert await session.scalar(select(func.count()).select_from(InboxEntry)) == 0
