"""The idempotent consumer loop every service uses to react to other services' events.

For each message: decode the envelope, skip an event already in the inbox or whose
``sequence`` is not above the last applied for its subject, else run the handler and record
the inbox row in one transaction. Offsets are committed only after the database commit. A
handler that keeps failing, or a message that cannot be decoded, goes to the dead-letter
topic with the error in its headers, so it never blocks the partition. An event is never
dead-lettered because the database is away: the consumer backs off and reads it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.structs import OffsetAndMetadata
from pydantic import ValidationError
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from tandem import metrics, tracing
from tandem.db import Database, utcnow
from tandem.dead_letters import record_dead_letter
from tandem.events import CloudEvent
from tandem.kafka import KafkaLink
from tandem.logs import event_id_var
from tandem.tables import InboxEntry, SubjectCursor

log = logging.getLogger("tandem.consumer")

Handler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]


class PoisonMessage(Exception):
    """A message that can never be applied (undecodable, invalid, or from a writer that does
    not own its topic)."""


class HeldForReview(Exception):
    """An event a consumer will not apply without a person's look: its ``sequence`` is far
    beyond the last one applied for its subject (a forged or broken writer would otherwise make
    every later real event of that aggregate stale). Kept as a held dead letter."""


class DatabaseUnavailable(Exception):
    """The database could not be reached (or was busy past its timeout) while applying events:
    nothing of the batch is committed, and the consumer reads it again later. Never a reason
    to dead-letter an event."""


def _unavailable(exc: BaseException) -> bool:
    return (isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError)
            or (isinstance(exc, DBAPIError) and exc.connection_invalidated))


class _RecordFailed(Exception):
    """The record at ``index`` of a batch could not be applied."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


_cursor = SubjectCursor.__table__  # type: ignore[attr-defined]
#: Moves one subject's cursor (executed once for all the subjects a batch moved).
_MOVE_CURSOR = (
    update(_cursor)
    .where(_cursor.c.consumer == bindparam("b_consumer"),
           _cursor.c.subject == bindparam("b_subject"))
    .values(last_sequence=bindparam("b_last"))
)


class EventConsumer:
    """Applies events from ``topics`` through ``handlers`` (keyed by event type), once each."""

    def __init__(
        self,
        *,
        name: str,
        topics: list[str],
        handlers: Mapping[str, Handler],
        db: Database,
        kafka: KafkaLink,
        dlq_topic: str,
        group_id: str | None = None,
        max_attempts: int = 3,
        after_commit: Callable[[CloudEvent], Any] | None = None,
        sources: Mapping[str, str] | None = None,
        max_sequence_gap: int | None = None,
    ) -> None:
        self.name = name
        self.topics = topics
        self.handlers = dict(handlers)
        self.db = db
        self.kafka = kafka
        self.dlq_topic = dlq_topic
        self.group_id = group_id or f"tandem-{name}"
        self.max_attempts = max_attempts
        self.after_commit = after_commit
        #: topic -> the only ``source`` its events may carry (the topic's owner).
        self.sources = dict(sources or {})
        self.max_sequence_gap = max_sequence_gap
        self.started = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled, reconnecting while the broker is away."""
        delay = 0.2
        while True:
            consumer = self.kafka.consumer(*self.topics, group_id=self.group_id)
            committing: asyncio.Task[None] | None = None
            try:
                await consumer.start()
                self.started.set()
                delay = 0.2
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=500)
                    offsets: dict[Any, OffsetAndMetadata] = {}
                    for tp, records in batches.items():
                        await self.process_batch(records)
                        offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "")
                    if offsets:
                        # One round trip for every partition of the fetch, while the next fetch
                        # is applied; one in flight, in order, its failure seen here.
                        if committing is not None:
                            await committing
                        committing = asyncio.create_task(consumer.commit(offsets))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The broker or the database is away: read again from the last committed
                # offsets once it is back (the inbox skips what was applied).
                log.warning("consumer %s lost its connection (%s); reconnecting", self.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                self.started.clear()
                if committing is not None:
                    # Only offsets of committed work are in it; cancelled or failed, the
                    # events are read again and the inbox skips them.
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(asyncio.shield(committing), 5)
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def process_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Apply one partition's records in one transaction.

        A commit per event caps catch-up at the disk's fsync rate, so a batch shares one, and
        its inbox and cursor reads and writes are one statement each. When a record cannot be
        applied, the transaction is rolled back, the records before it are applied again in a
        new one, and that record is handled alone (retries, then the DLQ); the batch then
        resumes after it, in order.
        """
        decoded: list[CloudEvent | PoisonMessage] = []
        for record in records:
            try:
                decoded.append(self.decode(record))
            except PoisonMessage as exc:
                decoded.append(exc)
        start, stop = 0, len(records)
        while start < len(records):
            try:
                await self._apply_batch(decoded[start:stop])
            except _RecordFailed as failed:
                if failed.__cause__ is not None and _unavailable(failed.__cause__):
                    raise DatabaseUnavailable(repr(failed.__cause__)) from failed.__cause__
                if failed.index > 0:
                    stop = start + failed.index  # what came before it applies cleanly
                    continue
            except Exception as exc:  # at commit: which record is unknown, so go one by one
                if _unavailable(exc):
                    raise DatabaseUnavailable(repr(exc)) from exc
                log.warning("consumer %s batch failed at commit (%r); applying one by one",
                            self.name, exc)
            else:
                start, stop = stop, len(records)
                continue
            await self.process(records[start])
            start, stop = start + 1, len(records)

    async def _apply_batch(self, events: list[CloudEvent | PoisonMessage], *,
                           reviewed: bool = False) -> list[str]:
        """Apply ``events`` in one transaction; raise ``_RecordFailed`` at the first that
        cannot be applied (nothing of the batch is then committed). ``reviewed``: a person
        replays it, so no hold applies. Returns each event's outcome."""
        outcomes: list[str] = []
        applied: list[CloudEvent] = []
        async with self.db.transaction() as session:
            known = [e for e in events if isinstance(e, CloudEvent) and e.type in self.handlers]
            seen: set[Any] = set()
            cursors: dict[str, int] = {}
            if known:
                seen = set(await session.scalars(
                    select(InboxEntry.event_id).where(
                        InboxEntry.consumer == self.name,
                        InboxEntry.event_id.in_({e.id for e in known}))))  # type: ignore[attr-defined]
                cursors = dict((await session.execute(
                    select(SubjectCursor.subject, SubjectCursor.last_sequence).where(
                        SubjectCursor.consumer == self.name,
                        SubjectCursor.subject.in_({e.subject for e in known})))).all())  # type: ignore[attr-defined]
            created: set[str] = set()
            moved: set[str] = set()
            inbox: list[dict[str, Any]] = []
            for index, event in enumerate(events):
                if isinstance(event, PoisonMessage):
                    raise _RecordFailed(index)
                handler = self.handlers.get(event.type)
                if handler is None:
                    outcomes.append("ignored")
                    continue
                if event.id in seen:
                    outcomes.append("duplicate")
                    continue
                last = cursors.get(event.subject)
                if last is not None and event.sequence <= last:
                    outcomes.append("stale")
                    continue
                if (not reviewed and self.max_sequence_gap is not None
                        and event.sequence > (last or 0) + self.max_sequence_gap):
                    raise _RecordFailed(index) from HeldForReview(
                        f"sequence {event.sequence} of {event.subject} is more than "
                        f"{self.max_sequence_gap} beyond the last applied ({last or 0})")
                token = event_id_var.set(str(event.id))
                try:
                    # The reaction belongs to the trace of the request that caused the event.
                    with tracing.continuing(event.traceparent, f"apply {event.type}",
                                            **{"tandem.consumer": self.name,
                                               "tandem.event.id": str(event.id)}):
                        await handler(session, event)
                except Exception as exc:
                    raise _RecordFailed(index) from exc
                finally:
                    event_id_var.reset(token)
                seen.add(event.id)
                (moved if last is not None or event.subject in created else created).add(
                    event.subject)
                cursors[event.subject] = event.sequence
                inbox.append({"consumer": self.name, "event_id": event.id,
                              "event_type": event.type, "subject": event.subject,
                              "sequence": event.sequence, "processed_at": utcnow()})
                outcomes.append("applied")
                applied.append(event)
            if inbox:
                await session.execute(insert(InboxEntry.__table__), inbox)  # type: ignore[arg-type]
            if created:
                await session.execute(insert(SubjectCursor.__table__), [  # type: ignore[arg-type]
                    {"consumer": self.name, "subject": subject, "last_sequence": cursors[subject]}
                    for subject in created])
            if moved - created:
                await session.execute(_MOVE_CURSOR, [
                    {"b_consumer": self.name, "b_subject": subject, "b_last": cursors[subject]}
                    for subject in moved - created])
        for outcome in outcomes:
            metrics.EVENTS_CONSUMED.labels(self.name, outcome).inc()
        if self.after_commit is not None:
            for event in applied:
                self.after_commit(event)
        return outcomes

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """Apply one record, retrying in place, else dead-letter it. Never raises for data; raises
        ``DatabaseUnavailable`` when the database stays away through the retries."""
        try:
            event = self.decode(record)
        except PoisonMessage as exc:
            await self.dead_letter(record, exc, attempts=1)
            return
        if event.type not in self.handlers:
            metrics.EVENTS_CONSUMED.labels(self.name, "ignored").inc()
            return
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._apply_batch([event])  # a batch of one: the same inbox rules
                return
            except Exception as raised:
                exc = raised.__cause__ if isinstance(raised, _RecordFailed) else raised
                assert exc is not None
                if isinstance(exc, HeldForReview):
                    log.warning("event %s held for review: %s", event.id, exc)
                    await self.dead_letter(record, exc, attempts=attempt, status="held")
                    return
                if attempt == self.max_attempts and _unavailable(exc):
                    raise DatabaseUnavailable(repr(exc)) from exc
                if attempt == self.max_attempts:
                    log.error("event %s failed %d times; dead-lettered: %r", event.id, attempt, exc)
                    await self.dead_letter(record, exc, attempts=attempt)
                    return
                log.warning("event %s failed (attempt %d): %r", event.id, attempt, exc)
                await asyncio.sleep(0.05 * 2**attempt)

    def decode(self, record: ConsumerRecord[bytes, bytes]) -> CloudEvent:
        if record.value is None:
            raise PoisonMessage("empty message value")
        try:
            event = CloudEvent.from_bytes(record.value)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage(f"not a valid Tandem CloudEvent: {exc}") from exc
        owner = self.sources.get(record.topic)
        if owner is not None and event.source != owner:
            raise PoisonMessage(f"event {event.id} claims source {event.source} on "
                                f"{record.topic}, which only {owner} writes")
        return event

    async def replay(self, value: bytes) -> str:
        """Apply a dead letter's message now that a person has looked at it (no hold, no
        source check); returns its outcome (``applied``, ``duplicate``, ``stale`` or
        ``ignored``). Raises what its handler raised when it still cannot be applied."""
        try:
            event = CloudEvent.from_bytes(value)
        except (ValidationError, ValueError) as exc:
            raise PoisonMessage(f"not a valid Tandem CloudEvent: {exc}") from exc
        try:
            return (await self._apply_batch([event], reviewed=True))[0]
        except _RecordFailed as failed:
            raise failed.__cause__ or failed from None

    async def dead_letter(
        self, record: ConsumerRecord[bytes, bytes], exc: BaseException, attempts: int,
        status: str = "dead",
    ) -> None:
        """Keep the record as a dead letter people can work (``tandem.dead_letters``), then
        copy it to the dead-letter topic with the error in its headers."""
        await record_dead_letter(self.db, consumer=self.name, record=record, error=exc,
                                 attempts=attempts, status=status)
        headers = list(record.headers or [])
        headers += [
            ("dlq.original.topic", record.topic.encode()),
            ("dlq.original.partition", str(record.partition).encode()),
            ("dlq.original.offset", str(record.offset).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
            ("dlq.exception.type", type(exc).__name__.encode()),
            ("dlq.exception.message", str(exc)[:4000].encode()),
            ("dlq.attempts", str(attempts).encode()),
        ]
        producer = await self.kafka.producer()
        await producer.send_and_wait(
            self.dlq_topic, value=record.value, key=record.key, headers=headers
        )
        metrics.EVENTS_CONSUMED.labels(self.name, "dead_lettered").inc()

