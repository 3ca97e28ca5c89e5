"""Hypothesis-generated garbage on every topic a service consumes never stops its consumer:
the real events written after it are still applied, each exactly once."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from apps_under_test import STORED, Running, platform_for, running
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tandem.events import new_event
from tandem.kafka import ensure_topics
from tandem.tables import InboxEntry
from tandem_cli.broker import EmbeddedBroker
from tandem_testing import TopicWatcher, eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: Per topic: the event types its consumers act on, the aggregate key in ``data``, the source.
TOPICS = {
    "incidents": ([f"tandem.incident.{v}" for v in (
        "created", "updated", "transitioned", "annotated", "sla_breached", "suspects_found",
        "cause_confirmed")], "incident"),
    "changes": ([f"tandem.change.{v}" for v in (
        "created", "updated", "transitioned", "approval_recorded")]
        + [f"tandem.freeze.{v}" for v in ("created", "updated", "transitioned")], "change"),
    "deployments": ([f"tandem.deployment.{v}" for v in (
        "created", "transitioned", "gate_decided")], "deployment"),
    "catalog": ([f"tandem.{a}.{v}" for a in ("service", "team") for v in (
        "created", "updated")], "service"),
}
FIELDS = ["id", "number", "name", "owner_team", "operations_team", "tier", "members",
          "service", "environment", "status", "priority", "major", "type",
          "planned_start", "planned_end", "incident_id", "deployment_id", "change_id",
          "commits", "gate", "started_at", "finished_at", "services", "starts_at", "ends_at",
          "source", "version", "cause_deployment_id", "reported_at", "resolved_at"]
FACTS = ["from", "to", "reason", "gate", "change_request", "deployment_id", "change_id",
         "priority", "freeze", "changes"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=24)
    | st.sampled_from(["production", "failed", "scheduled", "2026-01-01T00:00:00Z",
                       str(uuid.UUID(int=0)), "", "active"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def envelopes(topic: str) -> st.SearchStrategy[bytes]:
    """Well-formed CloudEvents of the consumed types whose ``data`` is anything at all."""
    types, aggregate = TOPICS[topic]
    snapshot = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
    data = st.fixed_dictionaries({}, optional={aggregate: snapshot | json_values}).flatmap(
        lambda base: st.dictionaries(st.sampled_from(FACTS), json_values, max_size=3).map(
            lambda facts: {**base, **facts}))
    return st.builds(
        lambda t, d, seq, subject: new_event(service=topic, type=t, subject=subject,
                                             sequence=seq, actor="fuzzer", data=d).to_bytes(),
        st.sampled_from(types), data, st.integers(1, 2**31),
        st.uuids().map(str) | st.text(min_size=1, max_size=64))


def poison(topic: str) -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(),  # a tombstone
        st.binary(max_size=300),
        json_values.map(orjson.dumps),
        st.integers().map(lambda n: json.dumps({"sequence": n, "id": n}).encode()),
        envelopes(topic).map(lambda raw: raw[: len(raw) // 2]),  # cut short
        envelopes(topic), envelopes(topic),
    )


def generated(strategy: st.SearchStrategy[Any], n: int) -> list[Any]:
    """``n`` values of ``strategy`` as Hypothesis generates them (seeded: the same every run)."""
    out: list[Any] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        out.append(value)

    collect()
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
                ) -> AsyncIterator[dict[str, Running]]:
    """incidents, changes, deployments, the catalog and the notifier on one set of topics,
    SQLite each."""
    var_dir = tmp_path_factory.mktemp("consumer-fuzz")
    platform = platform_for(broker, var_dir, log_level="ERROR")
    async with AsyncExitStack() as exits:
        services = {name: await exits.enter_async_context(
            running(name, broker, var_dir, platform=platform)) for name in STORED}
        yield services


async def inbox_count(svc: Running, event_ids: set[uuid.UUID]) -> int:
    async with svc.app.state.db.transaction() as session:
        return int(await session.scalar(
            select(func.count()).select_from(InboxEntry).where(
                InboxEntry.event_id.in_(event_ids))) or 0)


async def test_garbage_on_every_topic_never_stops_a_consumer(
        stack: dict[str, Running]) -> None:
    platform = stack["incidents"].platform
    partitions = platform.topic_partitions
    await ensure_topics(platform, [platform.topic(t) for t in TOPICS])
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    await producer.start()
    sent = 0
    try:
        for topic in TOPICS:
            assert len(await producer.partitions_for(platform.topic(topic))) == partitions
            values = generated(poison(topic), 30)
            acks = [await producer.send(platform.topic(topic), value=value,
                                        key=uuid.uuid4().bytes if i % 3 or value is None else None,
                                        partition=i % partitions,
                                        headers=[("content-type", b"application/cloudevents+json")])
                    for i, value in enumerate(values)]
            await asyncio.gather(*acks)
            sent += len(values)
    finally:
        await producer.stop()
    assert sent == 30 * len(TOPICS)

    # Real writes after the garbage, on every partition's heels: each reaction still happens.
    inc, chg, dep = stack["incidents"], stack["changes"], stack["deployments"]
    frozen, failing = f"fz-{uuid.uuid4().hex[:8]}", f"fd-{uuid.uuid4().hex[:8]}"
    major = await inc.client.post("/api/v1/incidents", headers=inc.headers("practitioner"),
                                  json={"title": "down", "service": frozen, "impact": 1,
                                        "urgency": 1, "environment": "production"})
    assert major.status_code == 201, major.text
    deployment = await dep.client.post(
        "/api/v1/deployments", headers=dep.headers("pipeline"),
        json={"service": failing, "environment": "production", "version": "1.0.0"})
    assert deployment.status_code == 201, deployment.text
    dep_id = deployment.json()["id"]
    for to in ("in_progress", "failed"):
        moved = await dep.client.post(f"/api/v1/deployments/{dep_id}/transitions",
                                      headers=dep.headers("pipeline"),
                                      json={"to": to, "reason": "fuzz"})
        assert moved.status_code == 200, moved.text

    async def incident_freeze() -> list[dict[str, Any]]:
        r = await chg.client.get("/api/v1/freezes", headers=chg.headers("viewer"),
                                 params={"limit": 200})
        return [f for f in r.json()["items"]
                if f["source"] == "incident" and frozen in f["services"]]

    async def failure_incident() -> list[dict[str, Any]]:
        r = await inc.client.get("/api/v1/incidents", headers=inc.headers("viewer"),
                                 params={"service": failing})
        return [i for i in r.json()["items"] if i.get("cause_deployment_id") == dep_id]

    async def gate_sees_the_incident() -> bool:
        r = await dep.client.post("/api/v1/deployments", headers=dep.headers("pipeline"),
                                  json={"service": frozen, "environment": "production",
                                        "version": "2.0.0"})
        return r.json()["gate"]["decision"] == "prevented"

    async def registered() -> bool:
        r = await stack["catalog"].client.get(f"/api/v1/services/{failing}",
                                              headers=inc.headers("viewer"))
        return r.status_code == 200 and r.json()["source"] == "discovered"

    await eventually(incident_freeze, timeout=60)
    await eventually(failure_incident, timeout=60)
    await eventually(registered, timeout=60)
    await eventually(gate_sees_the_incident, timeout=60)
    assert len(await incident_freeze()) == 1
    assert len(await failure_incident()) == 1

    # Exactly once, by event ids: each real event is in each consuming inbox once.
    async with TopicWatcher(platform, platform.topic("incidents")) as watcher:
        events = await watcher.wait_for(
            lambda evs: any(e.subject == major.json()["id"] for e in evs))
    incident_events = {e.id for e in events if e.subject == major.json()["id"]}
    assert await inbox_count(chg, incident_events) == len(incident_events)
    assert await inbox_count(dep, incident_events) >= 1
    # The notifier heard each of them once (every fact is queued for its subscribers); it
    # follows the topic on its own clock, so wait until it has heard them all.

    async def notifier_heard_all() -> bool:
        return await inbox_count(stack["notifier"], incident_events) >= len(incident_events)

    await eventually(notifier_heard_all, timeout=60)
    assert await inbox_count(stack["notifier"], incident_events) == len(incident_events)

    # The undecodable garbage was dead-lettered, not dropped silently.
    async with TopicWatcher(platform, platform.dlq_topic("incidents")) as dlq:
        await dlq.wait_for(lambda _: len(dlq.records) >= 5, timeout=30)
    headers = dict(dlq.records[0][3])
    assert headers["dlq.original.topic"].decode().startswith(platform.topic_prefix)
