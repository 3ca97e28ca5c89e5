"""The dashboard's one consumer: reads the topics from the beginning into the board.

It joins no consumer group (every dashboard process sees every partition) and commits no
offsets: the board lives in memory and is rebuilt from the topics on each start. After a
broker outage it resumes from the positions it reached, so no event is shown twice. A broker
that comes back without what was read (a new embedded one, topics re-created) gets the services'
retained history again; the feed then reads those partitions from their start, and the board
keeps only what is newer than what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from dashboard.board import Board, event_services
from dashboard.stream import EventHub, StreamEvent
from tandem.auth import RevokedTokens
from tandem.events import CloudEvent
from tandem.kafka import ReadPositions, ensure_topics
from tandem.revocations import REVOCATION_TOPIC, REVOKED, remember
from tandem.settings import PlatformSettings

log = logging.getLogger("dashboard.feed")

#: The topics the board is fed by (logical names).
TOPICS = ("incidents", "changes", "deployments", "catalog")
#: How often the feed checks that the broker still holds what it read.
HISTORY_CHECK_S = 5.0


class TopicFeed:
    """Consumes the topics into the board and the SSE hub until cancelled."""

    def __init__(self, platform: PlatformSettings, board: Board, hub: EventHub,
                 revoked: RevokedTokens | None = None) -> None:
        self.platform = platform
        #: The tokens this dashboard refuses, kept from the catalog's revocation events.
        self.revoked = revoked if revoked is not None else RevokedTokens()
        self.board = board
        self.hub = hub
        self.topics = [platform.topic(t) for t in TOPICS]
        self.positions: dict[TopicPartition, int] = {}
        #: The last record read of each partition, to ask whether the broker still holds it.
        self.read = ReadPositions(platform)
        self.connected = asyncio.Event()
        self.skipped = 0

    async def run(self) -> None:
        delay = 0.2
        while True:
            consumer = AIOKafkaConsumer(
                **self.platform.kafka_client_options(),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self.platform.kafka_fetch_max_wait_ms,
                request_timeout_ms=self.platform.kafka_request_timeout_ms,
            )
            try:
                await ensure_topics(self.platform, self.topics)
                await consumer.start()
                await self.assign(consumer)
                self.connected.set()
                delay = 0.2
                checked = asyncio.get_running_loop().time()
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    if asyncio.get_running_loop().time() - checked > HISTORY_CHECK_S:
                        checked = asyncio.get_running_loop().time()
                        await self.follow_reset_partitions(consumer)
                    if not batches and not self.board.caught_up:
                        self.board.caught_up = await self.at_end(consumer)
                    for tp, records in batches.items():
                        for record in records:
                            self.take(record)
                        self.positions[tp] = records[-1].offset + 1
                        self.read.saw(tp.topic, tp.partition, records[-1].offset,
                                      records[-1].value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dashboard feed lost the broker (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def assign(self, consumer: AIOKafkaConsumer) -> None:
        """Take every partition of the topics; start where this process left off, else at 0."""
        await consumer.topics()  # refreshes metadata so partition counts are known
        partitions = [TopicPartition(t, p) for t in self.topics
                      for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            raise RuntimeError("the topics have no partitions yet")
        consumer.assign(partitions)
        fresh = [tp for tp in partitions if tp not in self.positions]
        if fresh:
            await consumer.seek_to_beginning(*fresh)
        for tp in partitions:
            if tp in self.positions:
                consumer.seek(tp, self.positions[tp])

    async def follow_reset_partitions(self, consumer: AIOKafkaConsumer) -> None:
        """Partitions whose last record read the broker no longer holds belong to a broker that
        lost them: read them from their start (the services publish their history to it again).

        Not every partition ending at or below what was read: the embedded broker ends one at
        its last batch's first offset + 1, so a healthy partition would be read again from its
        start at every check (``ReadPositions`` reads that record again instead)."""
        reset = await self.read.lost(consumer)
        if reset:
            log.warning("the broker no longer holds what the board read from %d partitions; "
                        "reading them from their start", len(reset))
            for tp in reset:
                self.positions[tp] = 0
                self.read.forget(tp)
                consumer.seek(tp, 0)

    async def at_end(self, consumer: AIOKafkaConsumer) -> bool:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return all(self.positions.get(tp, 0) >= end for tp, end in ends.items())

    def take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record to the board and hand it to SSE clients; skip what is not an event."""
        try:
            event = CloudEvent.from_bytes(record.value or b"")
        except (ValidationError, ValueError) as exc:
            self.skipped += 1
            log.warning("skipped %s:%d:%d: not a Tandem event (%s)", record.topic,
                        record.partition, record.offset, str(exc)[:200])
            return
        if event.type == REVOKED:
            # Only the catalog revokes; a revocation is the verifier's, not the board's.
            if (record.topic == self.platform.topic(REVOCATION_TOPIC)
                    and event.source == f"/tandem/{REVOCATION_TOPIC}"):
                remember(self.revoked, event)
            return
        event_id = f"{record.topic}:{record.partition}:{record.offset}"
        if not self.board.apply(event, event_id):
            return  # a copy of an event the board (and its subscribers) already had
        payload = orjson.dumps(event.model_dump(mode="json", exclude_none=True)).decode()
        self.hub.publish(StreamEvent(event_id, event.type, event_services(event), payload))
