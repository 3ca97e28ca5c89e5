"""Scale-out proof: two instances of a service behave as one, with more capacity.

For each service (incidents, changes, deployments), two processes (real uvicorn, as the
Kubernetes Deployment runs them) share one PostgreSQL database and one broker. A bounded mixed
load of writes is spread over both, and other services' events arrive on a topic the service
consumes (for incidents, deployment failures: S2 opens an incident for each). Observed from
outside: exactly one process relays the outbox (PostgreSQL's lock table and each process's
metrics), the other takes over when the leader is SIGKILLed mid-load, the consumers split the
partitions, and the end state equals a one-instance run of the same load: every accepted
write's event is on the topic, once per sequence, in order per aggregate.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from scaleout_harness import (
    Instance,
    RelayWatch,
    metric,
    migrate_concurrently,
    service_env,
    start_instance,
    wait_ready,
)
from scaleout_workloads import WAVE, WORKLOADS, Script, Workload

from tandem.events import CONTENT_TYPE, CloudEvent
from tandem.settings import PlatformSettings
from tandem_cli.broker import EmbeddedBroker, free_port
from tandem_testing import (
    TopicWatcher,
    auth_headers,
    create_pg_database,
    drop_pg_database,
    eventually,
    isolated_platform,
)

pytestmark = pytest.mark.timeout(600)

#: Share of the load's writes accepted before the relay leader is killed.
KILL_AT = 0.4
PG = "postgres@127.0.0.1:5432"
CONFLICT = "urn:tandem:problem:conflict"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A broker of its own: no other test's consumer groups or topics."""
    b = EmbeddedBroker(free_port(), log_path=tmp_path_factory.mktemp("broker") / "tansu.log")
    b.start()
    yield b
    b.stop()


async def publish(platform: PlatformSettings, topic: str, events: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    try:
        await producer.start()
        for event in events:
            await producer.send_and_wait(
                platform.topic(topic),
                value=event.to_bytes(),
                key=event.subject.encode(),
                headers=[("content-type", CONTENT_TYPE.encode())],
            )
    finally:
        await producer.stop()


# --- a client-side load balancer -------------------------------------------------------------


@dataclass
class Balancer:
    """Sends each request to the preferred live instance, failing over like a Service would."""

    client: httpx.AsyncClient
    instances: list[Instance]
    headers: dict[str, str]
    served: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    ambiguous: int = 0

    async def call(
        self,
        prefer: int,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        for attempt in range(200):
            live = [i for i in self.instances if i.alive()]
            assert live, "no instance left"
            instance = live[(prefer + attempt) % len(live)]
            try:
                response = await self.client.request(
                    method,
                    f"{instance.url}{path}",
                    json=json,
                    timeout=20,
                    headers={**self.headers, **(headers or {})},
                )
            except httpx.TransportError:
                # Killed while answering: the write may or may not have committed.
                self.ambiguous += 1
                await asyncio.sleep(0.05)
                continue
            if response.status_code >= 500 or (
                response.status_code == 409 and response.json().get("type") == CONFLICT
            ):
                await asyncio.sleep(0.05)
                continue
            self.served[instance.name] += 1
            return response
        raise AssertionError(f"{method} {path}: no answer after 200 tries")


async def play(
    workload: Workload, script: Script, lb: Balancer, accepted: list[tuple[str, int]]
) -> None:
    """One aggregate's writes, alternating between the instances, each accepted exactly once
    (creates and notes by Idempotency-Key, transitions by If-Match)."""
    base = f"/api/v1/{workload.plural}"
    r = await lb.call(
        script.index,
        "POST",
        base,
        json=script.create,
        headers={"Idempotency-Key": f"create-{script.index}"},
    )
    assert r.status_code == 201, r.text
    ref, version = r.json()["id"], r.json()["version"]
    accepted.append((ref, version))
    for n, (kind, body) in enumerate(script.steps, 1):
        prefer = script.index + n
        if kind == "note":
            r = await lb.call(
                prefer,
                "POST",
                f"{base}/{ref}/notes",
                json=body,
                headers={"Idempotency-Key": f"note-{script.index}-{n}"},
            )
            assert r.status_code == 201, r.text
        else:
            r = await lb.call(
                prefer,
                "POST",
                f"{base}/{ref}/transitions",
                json=body,
                headers={"If-Match": f'"{version}"'},
            )
            if r.status_code == 412:
                # An earlier attempt committed on an instance that died before answering.
                now = (await lb.call(prefer, "GET", f"{base}/{ref}")).json()
                assert (now["version"], now["status"]) == (version + 1, body["to"]), r.text
            else:
                assert r.status_code == 200, r.text
                assert r.json()["version"] == version + 1, r.text
        version += 1
        accepted.append((ref, version))


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    state: dict[str, tuple[Any, ...]]
    history: dict[str, list[tuple[int, str]]]
    events: list[CloudEvent]
    accepted: list[tuple[str, int]]
    served: dict[str, int]
    wave1_applied: dict[str, float]
    published_before_kill: dict[str, float]
    published_after_kill: dict[str, float]
    leaders: list[str]
    holders_at_once: int
    leader_killed: str | None
    takeover_s: float | None
    migrations: list[int]
    ambiguous: int


async def list_all(lb: Balancer, plural: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = f"/api/v1/{plural}?limit=200" + (f"&cursor={cursor}" if cursor else "")
        answer = await lb.call(0, "GET", path)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def consumer_group(platform: PlatformSettings, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=platform.kafka_bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    described = response.to_object()["groups"][0]
    return described["state"], len(described["members"])


async def unpublished(database: str) -> int:
    conn = await asyncpg.connect(f"postgresql://{PG}/{database}")
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
    finally:
        await conn.close()


async def run(
    workload: Workload,
    broker: EmbeddedBroker,
    log_dir: Path,
    *,
    copies: int,
    kill_leader: bool,
    at: datetime,
) -> Outcome:
    service = workload.service
    platform = isolated_platform(broker.bootstrap, log_dir)
    database = await create_pg_database()
    env = service_env(
        {
            "TANDEM_KAFKA_BOOTSTRAP": platform.kafka_bootstrap,
            "TANDEM_TOPIC_PREFIX": platform.topic_prefix,
            "TANDEM_AUTH_SECRET": platform.jwt_secret,
            "TANDEM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "TANDEM_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "TANDEM_KAFKA_REQUEST_TIMEOUT_MS": "5000",
            "TANDEM_RELAY_POLL_INTERVAL_S": "0.2",
            "TANDEM_LOG_LEVEL": "WARNING",
            "TANDEM_VAR_DIR": str(log_dir),
            f"TANDEM_{service.upper()}_DATABASE_URL": f"postgresql+asyncpg://{PG}/{database}",
        }
    )
    scripts = workload.scripts(at)
    instances: list[Instance] = []
    sampler: asyncio.Task[None] | None = None
    try:
        migrations = await migrate_concurrently(service, env, copies)
        assert migrations[copies:] == [0] * copies, f"migrations failed: {migrations}"
        instances = [start_instance(service, f"{service}-{k}", env, log_dir) for k in range(copies)]
        async with (
            httpx.AsyncClient() as client,
            TopicWatcher(platform, platform.topic(service)) as topic,
        ):
            for instance in instances:
                await wait_ready(instance, client)

            async def group_formed() -> bool:
                group = platform.group_id(workload.consumer)
                return await consumer_group(platform, group) == ("Stable", copies)

            await eventually(group_formed, timeout=60, interval=0.2)
            watch = RelayWatch(service, database, instances)
            sampler = asyncio.create_task(watch.run(f"postgresql://{PG}/{database}"))
            lb = Balancer(client, instances, auth_headers(platform, workload.role, "load"))

            async def applied() -> dict[str, float]:
                return {
                    i.name: await metric(
                        client,
                        i,
                        "tandem_events_consumed_total",
                        consumer=workload.consumer,
                        outcome="applied",
                    )
                    for i in instances
                    if i.alive()
                }

            # Wave 1: foreign events on every partition; the group splits them.
            await publish(
                platform, workload.wave_topic, workload.wave(1, at, platform.topic_partitions)
            )
            await eventually(lambda: _sum_is(applied(), WAVE), timeout=60, interval=0.1)
            wave1_applied = await applied()

            accepted: list[tuple[str, int]] = []
            total = sum(1 + len(s.steps) for s in scripts)
            published_before: dict[str, float] = {}
            killed: list[str] = []
            takeover: list[float] = []

            async def kill_the_leader() -> None:
                """Once enough writes are in: SIGKILL the relay leader, then send wave 2."""
                while len(accepted) < total * KILL_AT:
                    await asyncio.sleep(0.01)
                if kill_leader:
                    for instance in instances:
                        published_before[instance.name] = await metric(
                            client, instance, "tandem_events_published_total", service=service
                        )
                    leader = watch.current()
                    victim = next(i for i in instances if i.name == leader)
                    victim.kill()
                    killed.append(victim.name)
                    started = time.monotonic()
                    await eventually(
                        lambda: _value(watch.current() not in (None, leader)),
                        timeout=30,
                        interval=0.05,
                    )
                    takeover.append(time.monotonic() - started)
                await publish(
                    platform, workload.wave_topic, workload.wave(2, at, platform.topic_partitions)
                )

            sem = asyncio.Semaphore(8)

            async def bounded(script: Script) -> None:
                async with sem:
                    await play(workload, script, lb, accepted)

            await asyncio.gather(kill_the_leader(), *(bounded(s) for s in scripts))
            # Wave 2 went out after the kill: the survivors apply all of it.
            survivors = sum(v for name, v in wave1_applied.items() if name not in killed)
            await eventually(lambda: _sum_is(applied(), survivors + WAVE), timeout=60, interval=0.1)

            expected = set(accepted)
            derived = 2 * WAVE * workload.derived_per_event

            def complete(evs: list[CloudEvent]) -> bool:
                created = {e.subject for e in evs if e.type.endswith(".created")}
                return (
                    expected <= {(e.subject, e.sequence) for e in evs}
                    and len(created) == len(scripts) + derived
                )

            await topic.wait_for(complete, timeout=90)
            await eventually(lambda: _zero(unpublished(database)), timeout=30, interval=0.2)
            published_after = {
                i.name: await metric(client, i, "tandem_events_published_total", service=service)
                for i in instances
                if i.alive()
            }
            final = await list_all(lb, workload.plural)
            await asyncio.sleep(0.3)  # a last look at the lock once everything settled
            await topic.poll()
            events = topic.events()
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        for instance in instances:
            instance.stop()
        await drop_pg_database(database)

    keys = {item["id"]: item[workload.key] for item in final}
    history: dict[str, list[tuple[int, str]]] = defaultdict(list)
    seen: set[uuid.UUID] = set()
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            history[keys[event.subject]].append((event.sequence, event.type))
    return Outcome(
        state={item[workload.key]: workload.state(item) for item in final},
        history=dict(history),
        events=events,
        accepted=accepted,
        served=dict(lb.served),
        wave1_applied=wave1_applied,
        published_before_kill=published_before,
        published_after_kill=published_after,
        leaders=watch.leaders(),
        holders_at_once=max(len(names) for _, names in watch.samples),
        leader_killed=killed[0] if killed else None,
        takeover_s=takeover[0] if takeover else None,
        migrations=migrations,
        ambiguous=lb.ambiguous,
    )


async def _value(value: object) -> object:
    return value


async def _sum_is(values: Any, expected: float) -> bool:
    return sum((await values).values()) == expected


async def _zero(count: Any) -> bool:
    return await count == 0


# --- the proof -------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", WORKLOADS, ids=[w.service for w in WORKLOADS])
async def test_two_instances_end_exactly_where_one_instance_ends(
    workload: Workload, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    if importlib.util.find_spec(workload.service) is None:
        pytest.skip(f"the {workload.service} service is not installed")
    at = datetime.now(UTC) - timedelta(minutes=30)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = await run(workload, broker, tmp_path / "one", copies=1, kill_leader=False, at=at)
    two = await run(workload, broker, tmp_path / "two", copies=2, kill_leader=True, at=at)
    first, second = f"{workload.service}-0", f"{workload.service}-1"
    print(  # what happened, for the CI log (pytest -s or -rA)
        f"scale-out {workload.service}: writes {len(two.accepted)} served {two.served}, "
        f"wave-1 applied {two.wave1_applied}, leaders {two.leaders}, takeover "
        f"{two.takeover_s}s, ambiguous retries {two.ambiguous}, migrations {two.migrations}"
    )

    # Migrations started by two pods at once end applied (a loser's restart finds them done).
    assert two.migrations[2:] == [0, 0]

    # The load really was spread: both instances served writes.
    assert set(two.served) == {first, second} and min(two.served.values()) > 0

    # Consumers split the partitions: both applied part of wave 1, together every event once.
    assert len(two.wave1_applied) == 2, two.wave1_applied
    assert min(two.wave1_applied.values()) > 0, two.wave1_applied
    assert sum(two.wave1_applied.values()) == WAVE

    # Exactly one relay publishes at a time: PostgreSQL never saw two lock holders, and the
    # instance that did not hold the lock had published nothing before the leader was killed.
    assert two.holders_at_once == 1
    leader = two.leader_killed
    assert leader in (first, second)
    follower = second if leader == first else first
    assert two.published_before_kill[leader] > 0
    assert two.published_before_kill[follower] == 0
    # ... and the other one took over once the leader was SIGKILLed.
    assert two.leaders == [leader, follower], two.leaders
    assert two.takeover_s is not None and two.takeover_s < 30
    assert two.published_after_kill[follower] > 0

    # Every accepted write's event is on the topic, exactly one event per aggregate version,
    # in order per aggregate (a re-sent batch repeats the same event ids).
    for outcome in (one, two):
        by_version: dict[tuple[str, int], set[uuid.UUID]] = defaultdict(set)
        for event in outcome.events:
            by_version[(event.subject, event.sequence)].add(event.id)
        assert all(len(ids) == 1 for ids in by_version.values())
        assert set(outcome.accepted) <= set(by_version)
        for key, history in outcome.history.items():
            sequences = [seq for seq, _ in history]
            assert sequences == list(range(1, len(sequences) + 1)), key

    # The end state equals the one-instance run of the same load.
    assert len(one.state) == len(workload.scripts(at)) + 2 * WAVE * workload.derived_per_event
    assert two.state == one.state
    assert two.history == one.history
