"""The gate's long polls: ``GET /deployments/{id}/gate?wait=N`` holds a pipeline's request until
its gate leaves ``awaiting`` (or N seconds pass).

A reader registers under what may decide its gate again (its deployment's id and the ids of
the changes it carries or rests on). Once the consumer has committed an event about a change,
the service's ``on_event_applied`` hook (:func:`wake_gate_readers`) wakes whoever waits under
the ids the event names: the change itself and the deployment it was made for. A wake-up that
decided nothing is harmless: the reader reads the row again and goes back to waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from deployments.config import DeploymentsSettings
from deployments.deployment import deployments, gate_public
from deployments.models import GateAnswer
from deployments.pipeline_scope import check_pipeline_scope
from deployments.rules.gate import Decision
from tandem.auth import Actor
from tandem.db import Database
from tandem.events import CloudEvent


class GateSignals:
    """Readers waiting for a gate, by the ids that may wake them; each owns an
    ``asyncio.Event``."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def wake(self, keys: Iterable[str]) -> None:
        """Wake every reader waiting under one of ``keys``."""
        for key in keys:
            for waiter in self._waiters.get(key, ()):
                waiter.set()

    def readers(self, key: str) -> int:
        """How many readers wait under ``key`` (a deployment or change id)."""
        return len(self._waiters.get(key, ()))

    @contextmanager
    def watch(self, keys: Iterable[str]) -> Iterator[asyncio.Event]:
        """An event set when something named by ``keys`` changed (register, then read)."""
        waiter = asyncio.Event()
        keys = set(keys)
        for key in keys:
            self._waiters.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[key]


def wake_gate_readers(app: FastAPI, event: CloudEvent) -> None:
    """``on_event_applied``: after the consumer's commit, wake the readers of gates the event
    may have decided again (only change events do)."""
    if event.aggregate != "change":
        return
    change = event.data.get("change")
    asked_by = change.get("deployment_id") if isinstance(change, dict) else None
    app.state.gate_signals.wake((event.subject, str(asked_by)) if asked_by else (event.subject,))


async def _read_gate(db: Database, ref: str,
                     asker: Actor | None = None) -> tuple[GateAnswer, set[str]]:
    # A short read of its own: a long poll must not hold a transaction open.
    async with db.transaction(read_only=True) as session:
        dep = await deployments.get(session, ref)
        if asker is not None:
            await check_pipeline_scope(session, asker, dep.service, dep.environment,
                                       rule="gate")
        answer = GateAnswer(**gate_public(dep).model_dump(), deployment_id=dep.id,
                            deployment_number=dep.number, deployment_status=dep.status)
        keys = {str(k) for k in (dep.id, dep.change_id, dep.gate_change_id) if k is not None}
        return answer, keys


async def gate_answer(db: Database, signals: GateSignals, settings: DeploymentsSettings,
                      ref: str, *, wait: float, asker: Actor) -> GateAnswer:
    """The gate of deployment ``ref``; with ``wait`` > 0 held up to that long (at most
    ``max_gate_wait_s``) until it leaves ``awaiting``.

    Woken by the consumed change event that may have decided it; with several replicas the
    event may land on another one, so the row is also read again every ``gate_recheck_s``.
    A CI job's token reads only the gates of its own repository's services (``asker``).
    """
    answer, keys = await _read_gate(db, ref, asker)
    if answer.decision != Decision.awaiting or wait <= 0:
        return answer
    deadline = time.monotonic() + min(wait, settings.max_gate_wait_s)
    ref = str(answer.deployment_id)
    with signals.watch(keys) as woken:
        # Read again after registering, so a decision made in between is not missed.
        answer, _ = await _read_gate(db, ref)
        while answer.decision == Decision.awaiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            woken.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), min(remaining, settings.gate_recheck_s))
            answer, _ = await _read_gate(db, ref)
    return answer
