"""``python -m bench.relay``: outbox relay throughput against a raw aiokafka producer sending
the same events in the same run (aim: ratio >= 0.5).

Fills a fresh SQLite outbox with ``--events`` CloudEvents (about 1 KiB each, written through
``add_event`` in transactions of 500, not timed), then times, alternately: a raw producer
(the relay's settings: acks=all, linger 2 ms, 1 MiB batches) sending the same payloads in
batches of 500, and the service's ``OutboxRelay`` draining the outbox (select, send, gather
the acks, mark published).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, update

from bench.harness import broker, machine
from incidents.config import MIGRATIONS_DIR
from tandem.db import Database
from tandem.events import CONTENT_TYPE, new_event
from tandem.kafka import KafkaLink, ensure_topics
from tandem.migrations import upgrade
from tandem.outbox import OutboxRelay, add_event
from tandem.settings import PlatformSettings
from tandem.tables import OutboxMessage


def snapshot(i: int) -> dict[str, object]:
    return {"incident": {"id": str(uuid.uuid4()), "number": f"INC{i:07d}", "title": "x" * 300,
                         "description": "y" * 400, "service": f"svc-{i % 50}",
                         "environment": "production", "priority": 3, "major": False,
                         "status": "new", "version": 1}}


async def fill(db: Database, topic: str, n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for start in range(0, n, 500):
        async with db.transaction() as session:
            for i in range(start, min(n, start + 500)):
                event = new_event(service="incidents", type="tandem.incident.created",
                                  subject=uuid.uuid4(), sequence=1, actor="bench",
                                  data=snapshot(i))
                await add_event(session, event)
                out.append((event.subject.encode(), event.to_bytes()))
    return out


async def raw(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2,
                                max_batch_size=1024 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(messages), 500):
            futures = [await producer.send(topic, value=v, key=k,
                                           headers=[("content-type", CONTENT_TYPE.encode())])
                       for k, v in messages[i:i + 500]]
            await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def relay(db: Database, platform: PlatformSettings) -> float:
    async with db.transaction() as session:
        await session.execute(update(OutboxMessage).values(published_at=None))
    kafka = KafkaLink(platform)
    await kafka.producer()  # connected before the clock starts, as in a running service
    outbox = OutboxRelay(service="incidents", db=db, kafka=kafka, topic=db.topic or "",
                         batch_size=500)
    try:
        started = time.perf_counter()
        while await outbox.relay_once():
            pass
        elapsed = time.perf_counter() - started
    finally:
        await kafka.close()
    async with db.transaction() as session:
        pending = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.published_at.is_(None)))  # type: ignore[union-attr]
    assert pending == 0, f"{pending} events left in the outbox"
    return elapsed


async def run(n: int, rounds: int) -> float:
    print(f"relay: {machine()}; {n} events per run, {rounds} rounds")
    with broker() as b, tempfile.TemporaryDirectory() as tmp:
        platform = PlatformSettings(kafka_bootstrap=b.bootstrap, var_dir=Path(tmp),
                                    topic_prefix=f"r{uuid.uuid4().hex[:8]}.")
        topic = platform.topic("incidents")
        await ensure_topics(platform, [topic])
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'outbox.db'}"
        upgrade(MIGRATIONS_DIR, url)
        db = Database(url, topic=topic)
        messages = await fill(db, topic, n)
        size = sum(len(v) for _, v in messages) / n
        ratios = []
        for r in range(1, rounds + 1):
            raw_s = await raw(b.bootstrap, topic, messages)
            relay_s = await relay(db, platform)
            ratios.append(raw_s / relay_s)
            print(f"  round {r}: raw producer {n / raw_s:8.0f} events/s, outbox relay "
                  f"{n / relay_s:8.0f} events/s, ratio {raw_s / relay_s:.2f} "
                  f"(events {size:.0f} B)")
        await db.dispose()
    best = sorted(ratios)[len(ratios) // 2]
    print(f"  median ratio relay / raw: {best:.2f} (aim >= 0.5)")
    return best


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.events, args.rounds))


if __name__ == "__main__":
    main()
