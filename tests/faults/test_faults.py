"""Fault drills on real processes under bounded load: the broker stopped for 20 s, each
service SIGKILLed and restarted, PostgreSQL restarted, poison on every topic. After each:
every accepted write present, every reaction applied exactly once, every service healthy."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from load import Load, new_tag, verify

from e2e.stack import Stack
from tandem.events import new_event
from tandem_cli.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.timeout(240)

SERVICES = ["incidents", "changes", "deployments"]


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of this module's own, since one drill stops it."""
    broker = EmbeddedBroker(free_port(), log_path=tmp_path_factory.mktemp("b") / "tansu.log")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def stack(own_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Stack]:
    running = Stack(own_broker.bootstrap, tmp_path_factory.mktemp("faults"), services=SERVICES,
                    env={"TANDEM_GATE_MODE": "receipt"}).start()
    yield running
    running.stop()


async def settle_before(stack: Stack) -> None:
    """Every consumer is in its group before load starts (so nothing waits on a join)."""
    await verify(stack, Load(stack, new_tag("warm")).ledger)


POISON: list[bytes | None] = [
    None, b"", b"\x00\xff\xfe", b"not json", b"[]", b'{"specversion": "1.0"}',
    b'{"specversion":"1.0","id":"x","source":"/tandem/x","type":"tandem.a.b"}',
]


def poison_events(topic: str) -> list[bytes]:
    """Well-formed envelopes of the types consumers act on, with data they cannot use."""
    kind = {"incidents": "incident", "changes": "change", "deployments": "deployment"}[topic]
    out = []
    for verb in ("created", "transitioned", "updated"):
        for data in ({}, {kind: None}, {kind: {"id": "nope", "service": 7}},
                     {kind: {"id": str(uuid.uuid4()), "environment": "production",
                             "status": "failed"}, "to": "failed"}):
            out.append(new_event(service=topic, type=f"tandem.{kind}.{verb}",
                                 subject=str(uuid.uuid4()), sequence=1, actor="poison",
                                 data=data).to_bytes())
    return out


async def publish_poison(stack: Stack) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=stack.platform.kafka_bootstrap, acks="all")
    await producer.start()
    sent = 0
    try:
        for topic in ("incidents", "changes", "deployments"):
            for i, value in enumerate([*POISON, *poison_events(topic)]):
                await producer.send_and_wait(stack.platform.topic(topic), value=value,
                                             key=f"poison-{i}".encode())
                sent += 1
    finally:
        await producer.stop()
    return sent


async def test_poison_on_every_topic_under_load(stack: Stack) -> None:
    await settle_before(stack)
    async with Load(stack, new_tag("poison")) as load:
        await asyncio.sleep(3)
        assert await publish_poison(stack) >= 3 * len(POISON)
        await asyncio.sleep(5)
    figures = await verify(stack, load.ledger)
    assert figures["failed"] >= 10, figures


async def test_each_service_sigkilled_under_load_and_restarted(stack: Stack) -> None:
    async with Load(stack, new_tag("kill")) as load:
        for name in SERVICES:
            await asyncio.sleep(3)
            await asyncio.to_thread(stack.kill, name)
            await asyncio.sleep(1)
            await asyncio.to_thread(stack.restart, name)
        await asyncio.sleep(3)
    figures = await verify(stack, load.ledger)
    assert figures["refused"] > 0, "the kills should have refused some writes"
    assert figures["failed"] >= 10, figures


async def test_broker_stopped_for_20_seconds_under_load(stack: Stack,
                                                        own_broker: EmbeddedBroker) -> None:
    async with Load(stack, new_tag("broker")) as load:
        await asyncio.sleep(3)
        # Stopped, not wiped: SIGSTOP freezes the broker as a dead host would (open connections
        # hang, requests time out) while keeping its log, as a real Kafka broker's disk does.
        # The embedded broker's memory storage would lose every topic on a restart instead.
        assert own_broker.process is not None
        before = len(load.ledger.deployments)
        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(20)
            during = len(load.ledger.deployments) - before
        finally:
            own_broker.process.send_signal(signal.SIGCONT)
        await asyncio.sleep(5)
    # Writes kept being accepted while the broker was away (readiness needs the database only).
    assert during > 20
    figures = await verify(stack, load.ledger, timeout=60)
    assert figures["failed"] >= 20, figures


PG_VERSION = next(iter(os.listdir("/etc/postgresql")), "") if Path("/etc/postgresql").is_dir() \
    else ""


def pg_ctl(action: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action],
                   check=True, timeout=60, capture_output=True)


def pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-q"],
                          check=False).returncode == 0


@pytest.fixture
def pg_stack(own_broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    if not PG_VERSION:
        pytest.skip("no local PostgreSQL cluster to restart")
    monkeypatch.setenv("TANDEM_E2E_DATABASE", "postgresql")
    running = Stack(own_broker.bootstrap, tmp_path_factory.mktemp("faults-pg"),
                    services=SERVICES, env={"TANDEM_GATE_MODE": "receipt"}).start()
    try:
        yield running
    finally:
        # PostgreSQL is up again at the end, whatever happened above.
        if not pg_ready():
            pg_ctl("start")
        deadline = time.monotonic() + 60
        while not pg_ready() and time.monotonic() < deadline:
            time.sleep(0.5)
        running.stop()


async def test_postgresql_restarted_under_load(pg_stack: Stack) -> None:
    await settle_before(pg_stack)
    async with Load(pg_stack, new_tag("pg")) as load:
        await asyncio.sleep(4)
        await asyncio.to_thread(pg_ctl, "restart")
        await asyncio.sleep(6)
    assert pg_ready()
    figures = await verify(pg_stack, load.ledger, timeout=120)
    assert figures["failed"] >= 10, figures
