"""The courier: sends the delivery log's pending deliveries, each subscription in a lane of its
own, so one slow or dead receiver never delays another.

A lane is one task per subscription with something to send. It holds the subscription's lease
(:class:`~notifier.models.DeliveryLane`), so of several replicas one sends a subscription's
deliveries at a time, and sends, oldest first, the first pending delivery of each subject that
is due: a subject's later events wait for its earlier one (in order per subject and
subscription), other subjects do not. Each attempt is signed (Standard Webhooks), bounded by
``attempt_timeout_s`` and recorded: delivered on a 2xx; on anything else retried with
exponential backoff and jitter until its retry window ends (``failed``); a 410 Gone disables the
subscription at once, and so does failing for ``disable_after_s`` (both with an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from notifier import metrics
from notifier.config import NotifierSettings
from notifier.destinations import check_destination
from notifier.errors import DestinationRefused
from notifier.models import Delivery, DeliveryLane, Subscription
from notifier.rules.messages import resource_link, slack_message
from notifier.rules.retries import GONE, RetryPolicy, succeeded
from notifier.rules.signing import signed_headers
from notifier.subscriptions import disable
from tandem.app import ServiceRuntime
from tandem.db import Database, utcnow
from tandem.events import CONTENT_TYPE
from tandem.settings import SERVICES

log = logging.getLogger("notifier.courier")

#: The most pending deliveries a lane reads at once (the oldest).
_WINDOW = 500


def policy_of(settings: NotifierSettings) -> RetryPolicy:
    return RetryPolicy(base_s=settings.retry_base_s,
                       max_interval_s=settings.retry_max_interval_s,
                       window_s=settings.retry_window_s,
                       disable_after_s=settings.disable_after_s)


def render(subscription: Subscription, event: dict[str, Any],
           settings: NotifierSettings) -> tuple[bytes, str]:
    """The body of one delivery and its content type, in the subscription's format."""
    if subscription.format == "slack":
        aggregate = str(event.get("type", "tandem.x.y")).split(".")[1]
        link = resource_link(settings.link_template, source=str(event.get("source", "")),
                             aggregate=aggregate, subject=str(event.get("subject", "")),
                             ports=SERVICES)
        return orjson.dumps(slack_message(event, link)), "application/json"
    return orjson.dumps(event), CONTENT_TYPE


class Courier:
    """Every lane of one process; :meth:`run` is the service's job."""

    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings
        self.policy = policy_of(settings)
        #: This process among replicas (the lanes' lease holder).
        self.holder = f"{socket.gethostname()[:60]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.lanes: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._woken = asyncio.Event()
        self._lane_woken: dict[uuid.UUID, asyncio.Event] = {}
        self.db: Database | None = None
        self.client: httpx.AsyncClient | None = None

    def wake(self) -> None:
        """Something new may be due (an event applied, a redelivery asked for)."""
        self._woken.set()
        for woken in self._lane_woken.values():
            woken.set()

    async def run(self, runtime: ServiceRuntime) -> None:
        """Start a lane for each subscription with pending deliveries, until cancelled."""
        self.db = runtime.db
        self.client = httpx.AsyncClient(follow_redirects=False, trust_env=False,
                                        headers={"user-agent": "Tandem-Notifier/1"})
        try:
            while True:
                try:
                    await self.tend()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database away: look again shortly
                    log.warning("courier could not read the delivery log: %r", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self.settings.poll_interval_s)
                self._woken.clear()
        finally:
            lanes = list(self.lanes.values())
            for lane in lanes:
                lane.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            await self.client.aclose()

    async def tend(self) -> None:
        """A lane for every active subscription with something pending; the backlog gauge."""
        assert self.db is not None
        async with self.db.transaction(read_only=True) as session:
            pending = dict((await session.execute(
                select(Delivery.subscription_id, func.count())
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(Delivery.status == "pending", Subscription.status == "active")
                .group_by(Delivery.subscription_id))).all())
        metrics.set_backlog(pending)
        for subscription_id in pending:
            lane = self.lanes.get(subscription_id)
            if lane is None or lane.done():
                self._lane_woken[subscription_id] = asyncio.Event()
                self.lanes[subscription_id] = asyncio.create_task(
                    self.lane(subscription_id), name=f"notifier-lane-{subscription_id}")
        for subscription_id in [s for s, t in self.lanes.items() if t.done()]:
            self.lanes.pop(subscription_id, None)
            self._lane_woken.pop(subscription_id, None)

    # --- one lane ---------------------------------------------------------------------------

    async def lane(self, subscription_id: uuid.UUID) -> None:
        """Send ``subscription_id``'s deliveries while it has some and this process holds it."""
        if not await self.claim(subscription_id):
            return
        renew_at = time.monotonic() + self.settings.lane_lease_s / 3
        try:
            while True:
                subscription, due, wait = await self.due(subscription_id)
                if subscription is None:
                    return
                for delivery in due:
                    if time.monotonic() > renew_at:  # the lease is renewed while it works
                        if not await self.claim(subscription_id):
                            return
                        renew_at = time.monotonic() + self.settings.lane_lease_s / 3
                    if await self.attempt(subscription, delivery) == GONE:
                        return  # disabled: nothing more goes to a receiver that is gone
                if due:
                    continue
                # Idle, the lane stays a while (its lease held) for the next event, which then
                # goes out without claiming the lane again.
                woken = self._lane_woken.setdefault(subscription_id, asyncio.Event())
                idle = self.settings.lane_lease_s / 3
                try:
                    await asyncio.wait_for(woken.wait(), idle if wait is None else min(wait, idle))
                except TimeoutError:
                    if wait is None:
                        return
                woken.clear()
                if time.monotonic() > renew_at:
                    if not await self.claim(subscription_id):
                        return
                    renew_at = time.monotonic() + self.settings.lane_lease_s / 3
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("lane of %s stopped (%r); the courier starts it again", subscription_id,
                        exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self.release(subscription_id))
            # A delivery queued while this lane was ending is picked up at once, not at the
            # next poll.
            self._woken.set()

    async def claim(self, subscription_id: uuid.UUID) -> bool:
        """Take or renew the subscription's lease; False while another process holds it."""
        assert self.db is not None
        now = utcnow()
        expires = now + timedelta(seconds=self.settings.lane_lease_s)
        try:
            async with self.db.transaction() as session:
                lane = (await session.scalars(
                    select(DeliveryLane).where(DeliveryLane.subscription_id == subscription_id)
                    .with_for_update().execution_options(populate_existing=True))).first()
                if lane is None:
                    session.add(DeliveryLane(subscription_id=subscription_id, holder=self.holder,
                                             lease_expires_at=expires))
                    return True
                held = (lane.holder not in (None, self.holder) and lane.lease_expires_at
                        is not None and lane.lease_expires_at > now)
                if held:
                    return False
                lane.holder = self.holder
                lane.lease_expires_at = expires
                return True
        except IntegrityError:  # another process created the lane first
            return False

    async def release(self, subscription_id: uuid.UUID) -> None:
        assert self.db is not None
        async with self.db.transaction() as session:
            lane = await session.get(DeliveryLane, subscription_id)
            if lane is not None and lane.holder == self.holder:
                lane.holder = None
                lane.lease_expires_at = None

    async def due(self, subscription_id: uuid.UUID,
                  ) -> tuple[Subscription | None, list[Delivery], float | None]:
        """The subscription (None: not active), the deliveries to send now (each subject's
        first pending one, when due; oldest first), and how long until the next one is due
        (None: nothing pending)."""
        assert self.db is not None
        async with self.db.transaction(read_only=True) as session:
            subscription = await session.get(Subscription, subscription_id)
            if subscription is None or subscription.status != "active":
                return None, [], None
            rows = list((await session.scalars(
                select(Delivery).where(Delivery.subscription_id == subscription_id,
                                       Delivery.status == "pending")
                .order_by(Delivery.created_at, Delivery.sequence).limit(_WINDOW))).all())
            session.expunge_all()
        heads: dict[str, Delivery] = {}
        for row in rows:
            if row.subject not in heads or row.sequence < heads[row.subject].sequence:
                heads[row.subject] = row
        now = utcnow()
        due = sorted((d for d in heads.values() if (d.next_attempt_at or now) <= now),
                     key=lambda d: (d.created_at, d.sequence))
        later = [d.next_attempt_at for d in heads.values()
                 if d.next_attempt_at is not None and d.next_attempt_at > now]
        wait = (min(later) - now).total_seconds() if later else None
        return subscription, due, wait

    async def attempt(self, subscription: Subscription, delivery: Delivery) -> int | None:
        """Send ``delivery`` once and record how it went; the receiver's status code (None:
        no answer)."""
        assert self.client is not None
        status_code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            await check_destination(subscription.url, self.settings, must_resolve=True)
            body, content_type = render(subscription, delivery.event, self.settings)
            headers = signed_headers(subscription.secret, str(delivery.event_id),
                                     int(time.time()), body)
            headers["content-type"] = content_type
            status_code = await asyncio.wait_for(
                self._post(subscription.url, body, headers), self.settings.attempt_timeout_s)
        except DestinationRefused as exc:
            error = f"refused by the destination guard: {exc.detail}"
        except TimeoutError:
            error = f"no answer within {self.settings.attempt_timeout_s:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
        latency = time.perf_counter() - started
        metrics.ATTEMPT_LATENCY.observe(latency)
        await self.record(subscription, delivery, status_code, error, latency)
        return status_code

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        assert self.client is not None
        timeout = httpx.Timeout(self.settings.attempt_timeout_s)
        # Only the status matters; the receiver's body is never read (it may be endless).
        async with self.client.stream("POST", url, content=body, headers=headers,
                                      timeout=timeout) as response:
            return response.status_code

    async def record(self, subscription: Subscription, delivery: Delivery,
                     status_code: int | None, error: str | None, latency: float) -> None:
        """The attempt's outcome, in one transaction: the delivery, the lane's failing streak,
        and a disabled subscription with its event when the receiver is gone or failing past
        the limit."""
        assert self.db is not None
        now = utcnow()
        async with self.db.transaction() as session:
            row = (await session.scalars(
                select(Delivery).where(Delivery.id == delivery.id).with_for_update()
                .execution_options(populate_existing=True))).first()
            lane = await session.get(DeliveryLane, subscription.id)
            if row is None or row.status != "pending" or lane is None:
                return
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status_code = status_code
            row.last_latency_ms = round(latency * 1000, 3)
            row.last_error = error if error is not None else (
                None if status_code is not None and succeeded(status_code)
                else f"answered {status_code}")
            row.updated_at = now
            if status_code is not None and succeeded(status_code):
                row.status = "delivered"
                row.delivered_at = now
                row.next_attempt_at = None
                lane.failing_since = None
                lane.last_success_at = now
                metrics.DELIVERIES.labels("delivered").inc()
                metrics.DELIVERY_LAG.observe(max(0.0, (now - _event_time(row)).total_seconds()))
                return
            lane.failing_since = lane.failing_since or now
            if status_code == GONE:
                row.status = "failed"
                row.next_attempt_at = None
                metrics.DELIVERIES.labels("gone").inc()
                await disable(session, subscription.id,
                              reason=f"the receiver answered 410 Gone to {subscription.url}")
                return
            next_at = self.policy.next_attempt(queued_at=row.queued_at, now=now,
                                               attempts=row.attempts)
            if next_at is None:
                row.status = "failed"
                row.next_attempt_at = None
                metrics.DELIVERIES.labels("failed").inc()
            else:
                row.next_attempt_at = next_at
                metrics.DELIVERIES.labels("retrying").inc()
            if self.policy.disables(failing_since=lane.failing_since, now=now):
                days = self.settings.disable_after_s / 86400
                await disable(session, subscription.id,
                              reason=f"every delivery failed for {days:g} days")


def _event_time(row: Delivery) -> datetime:
    raw = row.event.get("time")
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError:
        return row.created_at
