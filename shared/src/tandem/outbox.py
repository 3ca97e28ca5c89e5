"""The transactional outbox, the service's durable event history, and its relay.

:func:`add_event` writes an event in the caller's transaction; :class:`OutboxRelay` sends
unpublished rows in ``seq`` order, marks them published once the broker acknowledged them,
and keeps retrying while the broker is away. On PostgreSQL only the replica holding the
service's advisory lock relays, so per-aggregate order holds with several replicas.

Published rows are kept for ``outbox_retention_days`` (default 30): the outbox is the history
of every fact the service published. The relay remembers the highest offset the broker
acknowledged per partition (``relay_mark``); when the broker's partition ends below it (a new
embedded broker, a topic re-created, a cluster that lost data), or acknowledges an offset at
or below it (only the relay writes its topic, so a broker still holding the history numbers
each new record above it), the broker has lost events the outbox says were published, and the
relay publishes the whole retained history again, in order. Consumers skip what they had
applied (inbox), so this costs duplicates, never effects.
``republish(since=)`` does the same on request (``tandem events replay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tandem import metrics, tracing
from tandem.db import OUTBOX_TOPIC, Database, Prepared, utcnow
from tandem.events import CONTENT_TYPE, CloudEvent
from tandem.kafka import KafkaLink, ensure_topics
from tandem.tables import InboxEntry, OutboxMessage, RelayMark

log = logging.getLogger("tandem.outbox")


_outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
_ADD = Prepared(insert(_outbox))


async def add_event(session: AsyncSession, event: CloudEvent) -> None:
    """Write ``event`` in the session's transaction (it commits with the change it describes).

    It goes to the topic of the service whose database this is (``Database(topic=...)``).
    One prepared insert (:class:`~tandem.db.Prepared`): it is on every write path, twice on
    a deployment create, and an ORM row and its flush cost several times the insert.
    """
    topic = session.info.get(OUTBOX_TOPIC)
    if topic is None:
        raise RuntimeError("this session's database has no outbox topic (Database(topic=...))")
    await _ADD.run(session, {
        "id": event.id, "topic": topic, "aggregate_type": event.aggregate,
        "aggregate_id": event.subject, "sequence": event.sequence, "event_type": event.type,
        "payload": event.to_bytes(), "created_at": utcnow(), "attempts": 0})
    session.info["outbox"] = True


#: How old an acknowledgement must be before the history check holds the broker to it.
SETTLE_S = 2.0


def _lock_key(service: str) -> int:
    return int.from_bytes(
        hashlib.sha256(f"tandem-relay:{service}".encode()).digest()[:8], "big", signed=True
    )


class OutboxRelay:
    """Moves outbox rows to Kafka, one active relay per service."""

    def __init__(
        self,
        *,
        service: str,
        db: Database,
        kafka: KafkaLink,
        topic: str,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        history_check_interval_s: float = 5.0,
        retention: timedelta = timedelta(days=30),
        partitions: int = 6,
    ) -> None:
        self.service = service
        self.db = db
        self.kafka = kafka
        #: The service's own topic, the only one its outbox writes.
        self.topic = topic
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.history_check_interval_s = history_check_interval_s
        self.retention = retention
        self.partitions = partitions
        self._lock_conn: AsyncConnection | None = None
        #: The marks as this relay knows them (loaded when it becomes the active one): an
        #: acknowledgement at or below one comes from a broker that lost the history.
        self._marks: dict[tuple[str, int], int] | None = None
        self._checked_at = 0.0
        self._pruned_at = 0.0
        self.is_leader = False
        self._finishing = False

    def finish(self) -> None:
        """Stop :meth:`run` after the batch in hand. A batch cancelled between its sends and
        their acknowledgements is still sent by the producer, yet stays unpublished in the
        outbox, so the shutdown's drain would send it again (duplicates, and a partition's
        records acknowledged above the batch's first offset, which the history check would
        take for a broker that lost its history)."""
        self._finishing = True
        self.db.outbox_written.set()  # wake the loop from its wait

    async def run(self) -> None:
        backoff = 0.2
        while not self._finishing:
            try:
                if not await self._hold_lock():
                    await asyncio.sleep(self.poll_interval_s)
                    self._checked_at = 0.0  # a new leader checks the history first
                    continue
                await self.housekeeping()
                sent = await self.relay_once()
                backoff = 0.2
                if sent >= self.batch_size:
                    continue
                self.db.outbox_written.clear()
                if self._finishing:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay of %s failed, retrying: %s", self.service, exc)
                self._checked_at = 0.0  # the broker that answers next may be a new, empty one
                if isinstance(exc, DBAPIError | OSError):
                    # The lock lives on a connection that may be gone: take it afresh.
                    await self._release_lock()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _hold_lock(self) -> bool:
        if self.db.is_sqlite:
            self.is_leader = True
            return True
        if self._lock_conn is not None and not self._lock_conn.closed:
            # A session lock dies with its connection: prove the connection still lives.
            await self._lock_conn.execute(select(1))
            await self._lock_conn.commit()
            return True
        conn = await self.db.engine.connect()
        locked = await conn.scalar(select(func.pg_try_advisory_lock(_lock_key(self.service))))
        await conn.commit()
        if locked:
            self._lock_conn = conn
            self._marks = None  # another replica may have relayed meanwhile
            self.is_leader = True
            log.info("outbox relay of %s is the active one", self.service)
            return True
        await conn.close()
        self.is_leader = False
        return False

    async def _release_lock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        self.is_leader = False
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def housekeeping(self) -> None:
        """Now and then: has the broker lost what it acknowledged? And drop history older
        than the retention."""
        now = time.monotonic()
        if now - self._checked_at >= self.history_check_interval_s:
            self._checked_at = now
            await self.check_history()
        if now - self._pruned_at >= 3600:
            self._pruned_at = now
            await self.prune()

    async def check_history(self) -> bool:
        """Republish the retained history when the broker lacks events it acknowledged; True
        when it did. A broker that cannot be asked is checked again next time."""
        # Only marks acknowledged a moment ago or earlier: a broker's replicas may still be
        # catching up with what it has just acknowledged.
        settled = utcnow() - timedelta(seconds=SETTLE_S)
        async with self.db.reader() as session:
            marks = dict((await session.execute(
                select(RelayMark.partition, RelayMark.offset).where(
                    RelayMark.topic == self.topic,
                    RelayMark.acknowledged_at <= settled))).all())  # type: ignore[operator]
        if not marks:
            return False
        ends = await self.kafka.end_offsets(self.topic)
        if ends is None:
            lost = "the topic is gone"
            await ensure_topics(self.kafka.settings, [self.topic])
        else:
            behind = {p: (ends.get(p, 0), m) for p, m in marks.items() if ends.get(p, 0) <= m}
            if not behind:
                return False
            p, (end, mark) = next(iter(behind.items()))
            lost = f"partition {p} ends at {end} but offset {mark} was acknowledged"
        log.warning("the broker lost events of %s (%s); publishing the retained history again",
                    self.topic, lost)
        count = await self.republish()
        metrics.HISTORY_REPUBLISHED.labels(self.service).inc(count)
        return True

    async def republish(self, since: datetime | None = None) -> int:
        """Mark the retained events (published ``since``, default all) for relaying again;
        returns how many. They go out in their original order."""
        async with self.db.transaction() as session:
            stmt = (update(OutboxMessage)
                    .where(OutboxMessage.published_at.is_not(None))  # type: ignore[union-attr]
                    .values(published_at=None))
            if since is not None:
                stmt = stmt.where(OutboxMessage.created_at >= since)  # type: ignore[operator]
            count = (await session.execute(stmt)).rowcount or 0
            await session.execute(delete(RelayMark).where(RelayMark.topic == self.topic))
        self._marks = {}
        self.db.outbox_written.set()
        return count

    async def prune(self) -> int:
        """Forget published events (and the consumers' inbox entries) past the retention."""
        horizon = utcnow() - self.retention
        async with self.db.transaction() as session:
            gone = (await session.execute(delete(OutboxMessage).where(
                OutboxMessage.published_at < horizon))).rowcount or 0  # type: ignore[operator]
            # A consumer must know an event as long as any producer may publish it again.
            await session.execute(delete(InboxEntry).where(
                InboxEntry.processed_at < horizon - timedelta(days=1)))  # type: ignore[operator]
        return gone

    async def relay_once(self) -> int:
        """Send one batch of unpublished rows; returns how many were published."""
        async with self.db.reader() as session:
            rows = (
                await session.execute(
                    select(
                        OutboxMessage.seq,
                        OutboxMessage.topic,
                        OutboxMessage.aggregate_id,
                        OutboxMessage.payload,
                    )
                    .where(OutboxMessage.published_at.is_(None))  # type: ignore[union-attr]
                    .order_by(OutboxMessage.seq)  # type: ignore[arg-type]
                    .limit(self.batch_size)
                )
            ).all()
        metrics.OUTBOX_PENDING.labels(self.service).set(len(rows))
        if not rows:
            return 0
        producer = await self.kafka.producer()
        futures: list[asyncio.Future[Any]] = []
        for row in rows:
            # With tracing on, the send is a span of the trace the event belongs to.
            with tracing.continuing(_traceparent_of(row.payload), "publish event") \
                    if tracing.enabled() else contextlib.nullcontext():
                futures.append(
                    await producer.send(
                        row.topic,
                        value=row.payload,
                        key=row.aggregate_id.encode(),
                        headers=[("content-type", CONTENT_TYPE.encode())],
                    )
                )
        results = await asyncio.gather(*futures, return_exceptions=True)
        done: list[int] = []
        failed: list[tuple[int, str]] = []
        marks: dict[tuple[str, int], int] = {}
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failed.append((row.seq, repr(result)))
            else:
                done.append(row.seq)
                # The first offset of the partition's batch: the embedded broker numbers a
                # batch as one offset (its end moves by 1 however many records it took), so
                # only a batch's base offset is one it is sure to count.
                key = (result.topic, result.partition)
                marks[key] = min(marks.get(key, result.offset), result.offset)
        known = await self._known_marks() if marks else {}
        # Only this relay writes its topic: a broker that holds what it acknowledged before
        # numbers these records above that. One that does not is a new one (it lost the history),
        # found with the first batch it takes, before more goes to it ahead of the history.
        below = [(key, offset, known[key]) for key, offset in marks.items()
                 if key in known and offset <= known[key]]
        async with self.db.transaction() as session:
            if done:
                now = utcnow()
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.seq.in_(done))  # type: ignore[union-attr]
                    .values(published_at=now)
                )
                await upsert_marks(session, marks, now)
            for seq, error in failed:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.seq == seq)  # type: ignore[arg-type]
                    .values(attempts=OutboxMessage.attempts + 1, last_error=error[:2000])
                )
        metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(done))
        if self._marks is not None:
            for key, offset in marks.items():
                self._marks[key] = max(offset, self._marks.get(key, offset))
        if below:
            (topic, partition), offset, mark = below[0]
            log.warning("the broker lost events of %s (it acknowledged offset %d of partition "
                        "%d, which had reached %d); publishing the retained history again",
                        topic, offset, partition, mark)
            metrics.HISTORY_REPUBLISHED.labels(self.service).inc(await self.republish())
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(rows)} events not acknowledged: {failed[0][1]}"
            )
        return len(done)

    async def _known_marks(self) -> dict[tuple[str, int], int]:
        if self._marks is None:
            async with self.db.reader() as session:
                rows = (await session.execute(select(
                    RelayMark.topic, RelayMark.partition, RelayMark.offset))).all()
            self._marks = {(topic, partition): offset for topic, partition, offset in rows}
        return self._marks

    async def stop(self) -> None:
        await self._release_lock()


_marks = RelayMark.__table__  # type: ignore[attr-defined]


async def upsert_marks(session: AsyncSession, marks: dict[tuple[str, int], int],
                       now: datetime) -> None:
    """Raise each partition's mark to the highest offset just acknowledged. A mark never goes
    down: a broker that came back empty acknowledges small offsets again, and the old mark is
    what tells the history check that it lost the rest."""
    connection = await session.connection()
    postgres = connection.dialect.name == "postgresql"
    insert = (postgresql.insert if postgres else sqlite.insert)(_marks)
    new = insert.excluded
    highest = (func.greatest if postgres else func.max)(_marks.c.offset, new.offset)
    # The time is when the mark's offset was acknowledged, so an old high mark stays old.
    when = case((new.offset > _marks.c.offset, new.acknowledged_at),
                else_=_marks.c.acknowledged_at)
    statement = insert.on_conflict_do_update(
        index_elements=["topic", "partition"], set_={"offset": highest, "acknowledged_at": when})
    await connection.execute(statement, [
        {"topic": topic, "partition": partition, "offset": offset, "acknowledged_at": now}
        for (topic, partition), offset in marks.items()])


def _traceparent_of(payload: bytes) -> str | None:
    try:
        value = orjson.loads(payload).get("traceparent")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None
