"""Nothing lost, nothing doubled: the outbox relay and the idempotent consumer loop."""

from __future__ import annotations

import asyncio
import signal as signal_

import prometheus_client as metrics
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from sqlalchemy.exc import OperationalError
from tests.shared.probe_service import HANDLERS, create_probe_app, create_schema, effects, signal

from tandem.consumer import DatabaseUnavailable, EventConsumer
from tandem.db import Database
from tandem.events import CloudEvent
from tandem.kafka import KafkaLink, ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import TopicWatcher, auth_headers, eventually, running_service


async def publish(platform: PlatformSettings, topic: str, *messages: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


def encoded(event: CloudEvent) -> tuple[bytes, bytes]:
    return event.subject.encode(), event.to_bytes()


async def test_write_accepted_while_broker_is_down_is_delivered_once_after_it_starts(
    platform: PlatformSettings, new_database, tmp_path
) -> None:
    port = free_port()
    offline = platform.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    url = await new_database("notes")
    await create_schema(url)
    broker = EmbeddedBroker(port, log_path=tmp_path / "late-broker.log")
    try:
        async with running_service(create_probe_app(offline, url)) as client:
            r = await client.post(
                "/api/v1/notes",
                json={"text": "written offline"},
                headers=auth_headers(offline, "practitioner"),
            )
            assert r.status_code == 201
            assert (await client.get("/readyz")).status_code == 200
            await asyncio.sleep(1.0)  # the relay has tried and failed meanwhile
            broker.start()
            async with TopicWatcher(offline, offline.topic("notes")) as watcher:
                await watcher.wait_for(lambda evs: len(evs) >= 1, timeout=30)
                # A later write is relayed after the first; then count the first's events.
                r2 = await client.post(
                    "/api/v1/notes",
                    json={"text": "after"},
                    headers=auth_headers(offline, "practitioner"),
                )
                events = await watcher.wait_for(
                    lambda evs: any(e.subject == r2.json()["id"] for e in evs), timeout=30
                )
        assert [e.subject for e in events].count(r.json()["id"]) == 1
        assert events[0].data["note"]["text"] == "written offline"
    finally:
        broker.stop()


class Crash(BaseException):
    """Stands in for the process dying: nothing after it runs, no handler catches it."""


async def test_consumer_killed_between_db_commit_and_offset_commit_applies_once(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    topic = platform.topic("signals")
    await ensure_topics(platform, [topic, platform.dlq_topic("notes")])
    event = signal("aggregate-1", 1)
    await publish(platform, topic, encoded(event))
    db = Database(url)
    kafka = KafkaLink(platform)

    def crash_after_commit(_: CloudEvent) -> None:
        raise Crash

    def consumer(after_commit=None) -> EventConsumer:  # type: ignore[no-untyped-def]
        return EventConsumer(
            name="notes-reactions",
            topics=[topic],
            handlers=HANDLERS,
            db=db,
            kafka=kafka,
            dlq_topic=platform.dlq_topic("notes"),
            after_commit=after_commit,
        )

    try:
        first = asyncio.create_task(consumer(crash_after_commit).run())
        try:
            await asyncio.wait_for(first, timeout=30)
        except Crash:
            pass
        assert len(await effects(url)) == 1  # the effect committed before the "crash"
        second = consumer()
        duplicates_before = _duplicates_seen(second)
        task = asyncio.create_task(second.run())
        # The offset was never committed, so the restarted consumer sees the event again...

        async def redelivered() -> bool:
            return _duplicates_seen(second) > duplicates_before

        await eventually(redelivered, timeout=30)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # ...and the inbox keeps the effect single.
        assert [e.event_id for e in await effects(url)] == [event.id]
    finally:
        await kafka.close()
        await db.dispose()


def _duplicates_seen(consumer: EventConsumer) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "tandem_events_consumed_total", {"consumer": consumer.name, "outcome": "duplicate"}
        )
        or 0.0
    )


async def test_malformed_message_goes_to_the_dlq_and_the_partition_moves_on(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    topic = platform.topic("signals")
    await ensure_topics(platform, [topic])
    good_after = signal("same-key", 1)
    failing = signal("same-key", 2, fail=True)
    last = signal("same-key", 3)
    # All on one key, so one partition: the poison and the failing event sit in front.
    await publish(
        platform,
        topic,
        (b"same-key", b"{this is not json"),
        encoded(good_after),
        encoded(failing),
        encoded(last),
    )
    async with (
        running_service(create_probe_app(platform, url)),
        TopicWatcher(platform, platform.dlq_topic("notes")) as dlq,
    ):
        await eventually(lambda: _effects_are(url, {good_after.id, last.id}), timeout=30)
        await dlq.wait_for(lambda _: len(dlq.records) >= 2, timeout=30)
    values = [r[2] for r in dlq.records]
    assert values == [b"{this is not json", failing.to_bytes()]
    headers = dict(dlq.records[0][3])
    assert headers["dlq.original.topic"] == topic.encode()
    assert headers["dlq.exception.type"] == b"PoisonMessage"
    assert dict(dlq.records[1][3])["dlq.attempts"] == str(platform.consumer_max_attempts).encode()


async def _effects_are(url: str, ids: set) -> bool:  # type: ignore[type-arg]
    return {e.event_id for e in await effects(url)} == ids


async def test_duplicates_and_stale_sequences_are_not_applied_twice(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    topic = platform.topic("signals")
    await ensure_topics(platform, [topic])
    v1, v2, v3 = signal("agg", 1), signal("agg", 2), signal("agg", 3)
    # v2 twice (a relay re-send), then v1 late (stale), then v3.
    await publish(platform, topic, encoded(v1), encoded(v2), encoded(v2), encoded(v1), encoded(v3))
    async with running_service(create_probe_app(platform, url)):
        await eventually(lambda: _effects_are(url, {v1.id, v2.id, v3.id}), timeout=30)
    assert sorted(e.event_id for e in await effects(url)) == sorted([v1.id, v2.id, v3.id])


def as_record(offset: int, value: bytes, key: bytes = b"k") -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(topic="t", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=len(key),
                          serialized_value_size=len(value), headers=())


async def test_a_batch_with_a_failing_event_applies_every_other_event_once_in_order(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    a1, a2, a3, b1 = signal("a", 1), signal("a", 2), signal("a", 3), signal("b", 1)
    applied: list[str] = []
    failures = {a2.id: 1}  # a2 fails once, as on a lock timeout, then applies

    async def flaky(session, event: CloudEvent) -> None:  # type: ignore[no-untyped-def]
        if failures.get(event.id):
            failures[event.id] -= 1
            raise RuntimeError("transient")
        await HANDLERS["tandem.signal.sent"](session, event)
        applied.append(str(event.id))

    db = Database(url)
    kafka = KafkaLink(platform)
    consumer = EventConsumer(name="notes-reactions", topics=["t"],
                             handlers={"tandem.signal.sent": flaky}, db=db, kafka=kafka,
                             dlq_topic=platform.dlq_topic("notes"),
                             after_commit=lambda e: committed.append(str(e.id)))
    committed: list[str] = []
    try:
        # a1 again at the end is a re-send; a1 late after a3 is stale by its sequence.
        batch = [a1, b1, a2, a3, a1]
        await consumer.process_batch([as_record(i, e.to_bytes()) for i, e in enumerate(batch)])
        # The events before a2 ran twice (the batch was rolled back and re-applied) ...
        assert applied == [str(e.id) for e in (a1, b1, a1, b1, a2, a3)]
        # ... but each took effect, and was announced after its commit, exactly once.
        assert sorted(str(e.event_id) for e in await effects(url)) == sorted(
            str(e.id) for e in (a1, a2, a3, b1))
        assert committed == [str(e.id) for e in (a1, b1, a2, a3)]
        # A second delivery of the whole batch changes nothing.
        await consumer.process_batch([as_record(i, e.to_bytes()) for i, e in enumerate(batch)])
        assert len(await effects(url)) == 4
        assert committed == [str(e.id) for e in (a1, b1, a2, a3)]
    finally:
        await kafka.close()
        await db.dispose()


async def test_events_are_not_dead_lettered_while_the_database_is_away(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    a1, a2 = signal("a", 1), signal("a", 2)
    database = {"away": True}

    async def needs_the_database(session, event: CloudEvent) -> None:  # type: ignore[no-untyped-def]
        if database["away"]:
            raise OperationalError("INSERT ...", {}, ConnectionRefusedError("database is away"))
        await HANDLERS["tandem.signal.sent"](session, event)

    db = Database(url)
    kafka = KafkaLink(platform)
    consumer = EventConsumer(name="notes-reactions", topics=["t"],
                             handlers={"tandem.signal.sent": needs_the_database}, db=db,
                             kafka=kafka, dlq_topic=platform.dlq_topic("notes"))
    dead: list[object] = []

    async def dead_letter(record, exc, attempts) -> None:  # type: ignore[no-untyped-def]
        dead.append(exc)

    consumer.dead_letter = dead_letter  # type: ignore[method-assign]
    records = [as_record(i, e.to_bytes()) for i, e in enumerate((a1, a2))]
    try:
        # The run loop backs off and reads the batch again when this raises.
        with pytest.raises(DatabaseUnavailable):
            await consumer.process_batch(records)
        assert dead == [] and await effects(url) == []
        # Alone, an event retries in place, then the database counts as away, not the event.
        with pytest.raises(DatabaseUnavailable):
            await consumer.process(records[0])
        assert dead == [] and await effects(url) == []
        database["away"] = False
        await consumer.process_batch(records)
        assert dead == []
        assert sorted(str(e.event_id) for e in await effects(url)) == sorted(
            str(e.id) for e in (a1, a2))
    finally:
        await kafka.close()
        await db.dispose()


async def test_a_service_stopping_while_its_relay_waits_for_acks_publishes_each_event_once(
    platform: PlatformSettings, new_database, tmp_path
) -> None:
    """The stop comes while the relay's batch is sent and not yet acknowledged (the broker
    frozen for a moment): the relay finishes that batch and marks it before the shutdown drains
    the outbox, so no event is sent twice."""
    port = free_port()
    own = platform.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{port}"})
    url = await new_database("notes")
    await create_schema(url)
    broker = EmbeddedBroker(port, log_path=tmp_path / "frozen-broker.log")
    broker.start()
    try:
        async with TopicWatcher(own, own.topic("notes")) as watcher:
            service = running_service(create_probe_app(own, url))
            client = await service.__aenter__()
            headers = auth_headers(own, "practitioner")
            first = await client.post("/api/v1/notes", json={"text": "first"}, headers=headers)
            assert first.status_code == 201
            await watcher.wait_for(lambda evs: len(evs) >= 1, timeout=30)
            assert broker.process is not None
            broker.process.send_signal(signal_.SIGSTOP)  # acknowledgements stop coming
            try:
                r = await client.post("/api/v1/notes", json={"text": "in flight"},
                                      headers=headers)
                assert r.status_code == 201
                await asyncio.sleep(0.5)  # the relay has sent it and waits for the answer
                stopping = asyncio.create_task(service.__aexit__(None, None, None))
                await asyncio.sleep(0.5)
            finally:
                broker.process.send_signal(signal_.SIGCONT)
            await asyncio.wait_for(stopping, 30)
            await watcher.wait_for(lambda evs: len(evs) >= 2, timeout=30)
            await asyncio.sleep(1.0)  # a second copy would have arrived by now
            subjects = [e.subject for e in watcher.events()]
        assert sorted(subjects) == sorted([first.json()["id"], r.json()["id"]])
    finally:
        broker.stop()
