"""The transactional outbox and its relay.

:func:`add_event` writes an event in the caller's transaction; :class:`OutboxRelay` sends
unpublished rows in ``seq`` order, marks them published once the broker acknowledged them,
and keeps retrying while the broker is away. On PostgreSQL only the replica holding the
service's advisory lock relays, so per-aggregate order holds with several replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tandem import metrics
from tandem.db import OUTBOX_TOPIC, Database, utcnow
from tandem.events import CONTENT_TYPE, CloudEvent
from tandem.kafka import KafkaLink
from tandem.tables import OutboxMessage

log = logging.getLogger("tandem.outbox")


def add_event(session: AsyncSession, event: CloudEvent) -> None:
    """Queue ``event`` in the session's transaction (it commits with the change it describes).

    It goes to the topic of the service whose database this is (``Database(topic=...)``).
    """
    topic = session.info.get(OUTBOX_TOPIC)
    if topic is None:
        raise RuntimeError("this session's database has no outbox topic (Database(topic=...))")
    session.add(
        OutboxMessage(
            id=event.id,
            topic=topic,
            aggregate_type=event.aggregate,
            aggregate_id=event.subject,
            sequence=event.sequence,
            event_type=event.type,
            payload=event.to_bytes(),
        )
    )
    session.info["outbox"] = True


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
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
    ) -> None:
        self.service = service
        self.db = db
        self.kafka = kafka
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._lock_conn: AsyncConnection | None = None
        self.is_leader = False

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not await self._hold_lock():
                    await asyncio.sleep(self.poll_interval_s)
                    continue
                sent = await self.relay_once()
                backoff = 0.2
                if sent >= self.batch_size:
                    continue
                self.db.outbox_written.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_interval_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay of %s failed, retrying: %s", self.service, exc)
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
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                failed.append((row.seq, repr(result)))
            else:
                done.append(row.seq)
        async with self.db.transaction() as session:
            if done:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.seq.in_(done))  # type: ignore[union-attr]
                    .values(published_at=utcnow())
                )
            for seq, error in failed:
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.seq == seq)  # type: ignore[arg-type]
                    .values(attempts=OutboxMessage.attempts + 1, last_error=error[:2000])
                )
        metrics.EVENTS_PUBLISHED.labels(self.service).inc(len(done))
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(rows)} events not acknowledged: {failed[0][1]}"
            )
        return len(done)

    async def stop(self) -> None:
        await self._release_lock()
