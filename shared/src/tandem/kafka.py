"""Kafka connections: the process's one producer, explicit topic creation, consumer factory.

aiokafka's ``start()`` fails at once while the broker is down, so everything here connects in
the background and retries; a service serves HTTP meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from tandem.settings import PlatformSettings

log = logging.getLogger("tandem.kafka")


class KafkaLink:
    """The producer shared by a process's relay and dead-letter writes, started lazily."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        #: A consumer of no group, for offset questions only.
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        """The started producer; raises ``KafkaError`` when the broker cannot be reached."""
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    **self.settings.kafka_client_options(),
                    acks="all",
                    enable_idempotence=self.settings.kafka_idempotence,
                    linger_ms=2,
                    request_timeout_ms=self.settings.kafka_request_timeout_ms,
                    max_batch_size=1024 * 1024,
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
        return self._producer

    async def end_offsets(self, topic: str) -> dict[int, int] | None:
        """The end offset of each partition of ``topic``, or None when the broker has no such
        topic. Raises ``KafkaError`` when the broker cannot be asked."""
        reader = await self._reader_started()
        # All topics' metadata: asking for one by name would make the embedded broker create it.
        if topic not in await reader.topics():
            return None
        # Its partitions from the producer, whose metadata follows the topics it writes: the
        # reader's tracks none, and after a reconnect (a new broker) it may know the topic no
        # more, which would read as every partition empty and its history lost, again and again.
        producer = await self.producer()
        partitions = [TopicPartition(topic, p) for p in sorted(
            await producer.partitions_for(topic))]
        ends = await reader.end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _reader_started(self) -> AIOKafkaConsumer:
        if self._reader is not None:
            return self._reader
        async with self._lock:
            if self._reader is None:
                reader = AIOKafkaConsumer(
                    **self.settings.kafka_client_options(), group_id=None,
                    enable_auto_commit=False,
                    request_timeout_ms=self.settings.kafka_request_timeout_ms)
                try:
                    await reader.start()
                except BaseException:
                    await reader.stop()
                    raise
                self._reader = reader
        return self._reader

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        reader, self._reader = self._reader, None
        for client in (producer, reader):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()

    def consumer(self, *topics: str, group_id: str) -> AIOKafkaConsumer:
        s = self.settings
        return AIOKafkaConsumer(
            *topics,
            **s.kafka_client_options(),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
            fetch_max_wait_ms=s.kafka_fetch_max_wait_ms,
            request_timeout_ms=max(s.kafka_request_timeout_ms, s.kafka_session_timeout_ms + 5000),
            max_poll_interval_ms=300000,
        )


#: How long ``ensure_topics`` rides out a broker that answers but is not ready yet.
TOPIC_READY_S = 30.0


async def ensure_topics(settings: PlatformSettings, topics: Iterable[str]) -> None:
    """Create ``topics`` with the configured partition count; existing ones are left alone.

    A retriable broker error (a node not ready, a request timed out, a dropped connection) is
    tried again for up to ``TOPIC_READY_S``; any other error, or one that lasts, is raised.
    """
    topics = list(topics)
    deadline = asyncio.get_running_loop().time() + TOPIC_READY_S
    delay = 0.1
    while True:
        try:
            await _create_missing(settings, topics)
            return
        except KafkaError as exc:
            if not exc.retriable or asyncio.get_running_loop().time() + delay > deadline:
                raise
            log.info("broker not ready for topic creation (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _create_missing(settings: PlatformSettings, topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(
        **settings.kafka_client_options(),
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in dict.fromkeys(topics) if t not in existing]
        if not missing:
            return
        new = [
            NewTopic(t, num_partitions=settings.topic_partitions, replication_factor=1)
            for t in missing
        ]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass
        log.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def ensure_topics_with_retry(settings: PlatformSettings, topics: Iterable[str]) -> None:
    topics = list(topics)
    delay = 0.2
    while True:
        try:
            await ensure_topics(settings, topics)
            return
        except (KafkaError, OSError) as exc:
            log.info("broker not reachable for topic creation (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


class ReadPositions:
    """What a reader of no group (the dashboard's feed, ``events tail``) last read of each
    partition, and whether the broker still holds it.

    A partition whose end lies at or below the last offset read may mean the broker lost it (a
    new embedded broker, a topic re-created), but not always: the embedded broker reports a
    partition's end as its last batch's first offset + 1, below records of that batch it holds.
    So such a partition is checked by reading the last record read again: gone or different,
    the broker lost it.
    """

    def __init__(self, settings: PlatformSettings) -> None:
        self.settings = settings
        self.last: dict[TopicPartition, tuple[int, bytes | None]] = {}

    def saw(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        self.last[TopicPartition(topic, partition)] = (offset, value)

    def forget(self, tp: TopicPartition) -> None:
        self.last.pop(tp, None)

    async def lost(self, reader: AIOKafkaConsumer) -> list[TopicPartition]:
        """The partitions whose last read record the broker no longer holds."""
        if not self.last:
            return []
        ends = await reader.end_offsets(list(self.last))
        suspects = [tp for tp, (offset, _) in self.last.items() if ends.get(tp, 0) <= offset]
        if not suspects:
            return []
        probe = AIOKafkaConsumer(**self.settings.kafka_client_options(), group_id=None,
                                 enable_auto_commit=False,
                                 request_timeout_ms=self.settings.kafka_request_timeout_ms)
        found: dict[TopicPartition, bytes | None] = {}
        try:
            await probe.start()
            probe.assign(suspects)
            for tp in suspects:
                probe.seek(tp, self.last[tp][0])
            deadline = asyncio.get_running_loop().time() + 3
            answered: set[TopicPartition] = set()
            while len(answered) < len(suspects) and asyncio.get_running_loop().time() < deadline:
                for tp, records in (await probe.getmany(timeout_ms=500)).items():
                    answered.add(tp)
                    probe.pause(tp)
                    for record in records:
                        if record.offset == self.last[tp][0]:
                            found[tp] = record.value
        finally:
            await probe.stop()
        return [tp for tp in suspects if tp not in found or found[tp] != self.last[tp][1]]
