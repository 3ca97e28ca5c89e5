"""``python -m bench.catchup``: consumer catch-up over a backlog of ``--events`` (100k) change
events (aim >= 5k events/s).

Publishes the backlog first (``--changes`` changes, each created, updated and moved through
its states, so every event is applied, none is stale), then starts the incidents service's
reaction consumer (the shared ``EventConsumer`` with its inbox, sequence check and change
projection) on a fresh SQLite database and times it until every event is in the inbox.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from bench.harness import broker, machine
from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from incidents.consumers import REACTIONS
from tandem.consumer import EventConsumer
from tandem.db import Database, new_id
from tandem.events import CONTENT_TYPE, new_event
from tandem.kafka import KafkaLink, ensure_topics
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem.tables import InboxEntry

STEPS = [("created", "assess"), ("updated", "assess"), ("transitioned", "authorize"),
         ("transitioned", "scheduled"), ("transitioned", "implement")]


async def publish(bootstrap: str, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=1024 * 1024)
    await producer.start()
    try:
        futures = []
        changes = n // len(STEPS)
        for c in range(changes):
            change_id = new_id()
            for seq, (verb, status) in enumerate(STEPS, start=1):
                data = {"change": {"id": str(change_id), "number": f"CHG{c:07d}",
                                   "type": "normal", "title": f"change {c}",
                                   "service": f"svc-{c % 100}", "environment": "production",
                                   "status": status, "version": seq}}
                event = new_event(service="changes", type=f"tandem.change.{verb}",
                                  subject=change_id, sequence=seq, actor="bench", data=data)
                futures.append(await producer.send(
                    topic, value=event.to_bytes(), key=str(change_id).encode(),
                    headers=[("content-type", CONTENT_TYPE.encode())]))
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures = []
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def run(n: int) -> float:
    print(f"catch-up: {machine()}; backlog of {n} events")
    with broker() as b, tempfile.TemporaryDirectory() as tmp:
        platform = PlatformSettings(kafka_bootstrap=b.bootstrap, var_dir=Path(tmp),
                                    topic_prefix=f"c{uuid.uuid4().hex[:8]}.")
        topic = platform.topic("changes")
        await ensure_topics(platform, [topic, platform.dlq_topic("incidents")])
        started = time.perf_counter()
        await publish(b.bootstrap, topic, n)
        print(f"  backlog published in {time.perf_counter() - started:.1f} s")
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'incidents.db'}"
        upgrade(MIGRATIONS_DIR, url)
        db = Database(url, topic=platform.topic("incidents"))
        kafka = KafkaLink(platform)
        settings = IncidentsSettings(database_url=url)
        consumer = EventConsumer(name="incidents-reactions", topics=[topic],
                                 handlers=REACTIONS.bound(settings), db=db, kafka=kafka,
                                 dlq_topic=platform.dlq_topic("incidents"),
                                 group_id=platform.group_id("bench-catchup"))
        target = (n // len(STEPS)) * len(STEPS)
        started, cpu_started = time.perf_counter(), time.process_time()
        task = asyncio.create_task(consumer.run())
        joined = None
        try:
            while True:
                await asyncio.sleep(0.5)
                if joined is None and consumer.started.is_set():
                    joined = time.perf_counter() - started
                async with db.transaction(read_only=True) as session:
                    applied = await session.scalar(
                        select(func.count()).select_from(InboxEntry))
                if applied >= target:
                    break
                if time.perf_counter() - started > 900:
                    raise TimeoutError(f"only {applied} of {target} applied")
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await kafka.close()
            await db.dispose()
    rate = target / elapsed
    print(f"  {target} events applied in {elapsed:.1f} s (group join {joined or 0:.1f} s): "
          f"{rate:.0f} events/s; {target / (elapsed - (joined or 0)):.0f} events/s after the "
          f"join (aim >= 10000 over 100k); consumer CPU {cpu / target * 1e6:.0f} us an event")
    return rate


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    return asyncio.run(run(args.events))


if __name__ == "__main__":
    main()
