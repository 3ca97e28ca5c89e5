"""How a relay and the board tell a new, empty embedded broker from the one they had, found by
the ``tandem dev`` drills (tests/faults/dev_drills.py) and pinned here, fast, on real brokers.

The embedded broker ends a partition at its last batch's first offset + 1, not after its last
record; each check must hold on a healthy broker with batches of many records, and still see a
broker that lost everything.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from tests.shared.probe_service import create_probe_app, create_schema

from dashboard import feed as feed_module
from dashboard.board import Board
from dashboard.config import DashboardSettings
from dashboard.feed import TopicFeed
from dashboard.stream import EventHub
from tandem.events import new_event
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    eventually,
    isolated_platform,
    new_database_url,
    running_service,
)

pytestmark = pytest.mark.timeout(120)


class Brokers:
    """One port, and a new empty embedded broker on it whenever asked."""

    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.logs = logs
        self.current: EmbeddedBroker | None = None
        self.started = 0

    def new(self) -> None:
        if self.current is not None:
            self.current.stop()
        self.started += 1
        self.current = EmbeddedBroker(self.port, log_path=self.logs / f"b{self.started}.log")
        self.current.start()


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[Brokers]:
    b = Brokers(tmp_path)
    b.new()
    yield b
    if b.current is not None:
        b.current.stop()


async def test_a_relay_finds_a_new_broker_by_the_first_offset_it_acknowledges(
    brokers: Brokers, tmp_path: Path
) -> None:
    # No periodic check within the test: only the acknowledgements can tell.
    platform = isolated_platform(f"127.0.0.1:{brokers.port}", tmp_path,
                                 history_check_interval_s=3600)
    url, _ = await new_database_url("sqlite", tmp_path, "notes")
    await create_schema(url)
    headers = auth_headers(platform, "practitioner")
    async with running_service(create_probe_app(platform, url)) as client:
        async def write(n: int) -> list[str]:
            ids = []
            for i in range(n):
                r = await client.post("/api/v1/notes", json={"text": f"note {i}"},
                                      headers=headers)
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            return ids

        # Enough notes that every partition has an acknowledged offset: the relay can only
        # tell a new broker on a partition it knows a mark of (with 12, one of the six
        # partitions was left without one about one run in nine, and the test failed).
        before = await write(60)
        async with TopicWatcher(platform, platform.topic("notes")) as watcher:
            await watcher.wait_for(lambda evs: len(evs) >= 60, timeout=30)
        brokers.new()  # the relay sent nothing meanwhile, so none of its sends failed
        await ensure_topics(platform, [*platform.all_topics(), platform.topic("notes")])
        after = await write(1)
        async with TopicWatcher(platform, platform.topic("notes")) as watcher:
            # Without the check, the new broker holds the one new note, and nothing else ever.
            events = await watcher.wait_for(
                lambda evs: {e.subject for e in evs} >= set(before + after), timeout=30)
    assert {e.subject for e in events} == set(before + after)


async def _publish(platform: PlatformSettings, count: int, batched: bool) -> None:
    """``count`` incident events, as one batch per partition or one record per batch."""
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all",
                                linger_ms=20)
    await producer.start()
    try:
        sends = []
        for i in range(count):
            subject = str(uuid.uuid4())
            event = new_event(service="incidents", type="tandem.incident.created",
                              subject=subject, sequence=1, actor="drill",
                              data={"incident": {"id": subject, "number": f"INC{i:07d}",
                                                 "status": "new", "service": "checkout",
                                                 "priority": 3}})
            send = producer.send(platform.topic("incidents"), value=event.to_bytes(),
                                 key=subject.encode())
            if batched:
                sends.append(await send)
            else:
                await (await send)
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def test_the_board_reads_a_healthy_broker_once_and_a_new_one_from_its_start(
    brokers: Brokers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(feed_module, "HISTORY_CHECK_S", 0.2)
    platform = isolated_platform(f"127.0.0.1:{brokers.port}", tmp_path)
    await ensure_topics(platform, platform.all_topics())
    await _publish(platform, 20, batched=False)
    await _publish(platform, 60, batched=True)  # a last batch of many records per partition
    board = Board(DashboardSettings())
    feed = TopicFeed(platform, board, EventHub(ring_size=100, client_queue_size=100))
    taken = 0
    take = feed.take

    def counting(record):  # type: ignore[no-untyped-def]
        nonlocal taken
        taken += 1
        take(record)

    feed.take = counting  # type: ignore[method-assign]
    task = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: board.events_applied == 80, timeout=30)
        await asyncio.sleep(2)  # ten history checks
        # Read once: a healthy partition is never taken for a lost one.
        assert taken == 80
        assert "no longer holds" not in caplog.text
        with caplog.at_level(logging.WARNING, logger="dashboard.feed"):
            brokers.new()
            await ensure_topics(platform, platform.all_topics())
            await _publish(platform, 3, batched=False)
            await eventually(lambda: board.events_applied == 83, timeout=30)
        assert "no longer holds what the board read" in caplog.text
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
