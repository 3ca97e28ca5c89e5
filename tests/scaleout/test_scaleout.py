"""Scale-out proof: two instances of a service behave as one, with more capacity.

Two incidents processes (real uvicorn, as the Kubernetes Deployment runs them) share one
PostgreSQL database and one broker. A bounded mixed load of writes is spread over both, and
deployment failures arrive on the deployments topic (S2: each opens an incident). Observed
from outside: exactly one process relays the outbox (PostgreSQL's lock table and each
process's metrics), the other takes over when the leader is SIGKILLed mid-load, the consumers
split the partitions, and the end state equals a one-instance run of the same load: every
accepted write's event is on the topic, once per sequence, in order per incident.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from aiokafka.partitioner import murmur2
from scaleout_harness import (
    Instance,
    RelayWatch,
    metric,
    migrate_concurrently,
    service_env,
    start_instance,
    wait_ready,
)

from tandem.broker import EmbeddedBroker, free_port
from tandem.events import CONTENT_TYPE, CloudEvent, new_event
from tandem.settings import PlatformSettings
from tandem.testing import (
    TopicWatcher,
    auth_headers,
    create_pg_database,
    drop_pg_database,
    eventually,
)

pytestmark = pytest.mark.timeout(600)

SERVICE = "incidents"
CONSUMER = f"{SERVICE}-reactions"
SCRIPTS = 24
WAVE = 12
#: Share of the load's writes accepted before the relay leader is killed.
KILL_AT = 0.4
PG = "postgres@127.0.0.1:5432"
HEADERS_PROBLEM_CONFLICT = "urn:tandem:problem:conflict"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A broker of its own: no other test's consumer groups or topics."""
    b = EmbeddedBroker(free_port(), log_path=tmp_path_factory.mktemp("broker") / "tansu.log")
    b.start()
    yield b
    b.stop()


# --- the load --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """One incident's life: created, then worked through notes and transitions."""

    index: int
    create: dict[str, Any]
    steps: tuple[tuple[str, dict[str, Any]], ...]


def the_load() -> list[Script]:
    scripts = []
    for i in range(SCRIPTS):
        create = {
            "title": f"scale-out load {i:02d}",
            "description": "bounded mixed load",
            "service": f"load-{i % 4}",
            "environment": "staging",
            "impact": 3,
            "urgency": 3,
        }
        steps: tuple[tuple[str, dict[str, Any]], ...]
        if i % 3 == 0:
            steps = (
                ("note", {"text": "first look"}),
                ("transition", {"to": "acknowledged", "reason": "on it"}),
                ("transition", {"to": "in_progress", "reason": "diagnosing"}),
                ("note", {"text": "mitigated"}),
                (
                    "transition",
                    {
                        "to": "resolved",
                        "reason": "fixed",
                        "resolution_code": "known_error",
                        "resolution_notes": "restarted the pool",
                    },
                ),
            )
        elif i % 3 == 1:
            steps = (
                ("transition", {"to": "acknowledged", "reason": "seen"}),
                ("transition", {"to": "canceled", "reason": "duplicate alert"}),
            )
        else:
            steps = (
                ("transition", {"to": "in_progress", "reason": "working"}),
                ("note", {"text": "waiting for the vendor"}),
                (
                    "transition",
                    {"to": "on_hold", "reason": "vendor", "on_hold_reason": "awaiting_vendor"},
                ),
            )
        scripts.append(Script(i, create, steps))
    return scripts


def deployment_failures(wave: int, at: datetime, partitions: int) -> list[CloudEvent]:
    """``WAVE`` failed production deployments whose keys cover every partition (each of its
    own service, so no incident's suspects depend on which consumer was faster)."""
    per_partition: dict[int, int] = defaultdict(int)
    events: list[CloudEvent] = []
    n = 0
    while len(events) < WAVE:
        deployment_id = uuid.uuid5(uuid.NAMESPACE_URL, f"tandem-scaleout/{wave}/{n}")
        partition = (murmur2(str(deployment_id).encode()) & 0x7FFFFFFF) % partitions
        n += 1
        if per_partition[partition] >= WAVE // partitions:
            continue
        per_partition[partition] += 1
        number = f"DEP{wave}{len(events):06d}"
        snapshot = {
            "id": str(deployment_id),
            "number": number,
            "service": f"target-{wave}-{len(events)}",
            "environment": "production",
            "version": f"1.{wave}.{len(events)}",
            "commits": [],
            "change_id": None,
            "status": "failed",
            "gate": {"decision": "allowed", "reasons": [], "change_id": None, "mode": "off"},
            "started_at": at.isoformat(),
            "finished_at": (at + timedelta(minutes=2)).isoformat(),
        }
        events.append(
            new_event(
                service="deployments",
                type="tandem.deployment.transitioned",
                subject=deployment_id,
                sequence=3,
                actor="pipeline-ci",
                data={
                    "deployment": snapshot,
                    "from": "in_progress",
                    "to": "failed",
                    "reason": "smoke tests failed",
                },
            )
        )
    return events


async def publish(platform: PlatformSettings, events: list[CloudEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    try:
        await producer.start()
        for event in events:
            await producer.send_and_wait(
                platform.topic("deployments"),
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
            retry = response.status_code >= 500 or (
                response.status_code == 409
                and response.json().get("type") == HEADERS_PROBLEM_CONFLICT
            )
            if retry:
                await asyncio.sleep(0.05)
                continue
            self.served[instance.name] += 1
            return response
        raise AssertionError(f"{method} {path}: no answer after 200 tries")


@dataclass
class Accepted:
    """Writes the API accepted: (incident id, version after the write), in acceptance order."""

    writes: list[tuple[str, int]] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)


async def play(script: Script, lb: Balancer, accepted: Accepted) -> None:
    r = await lb.call(
        script.index,
        "POST",
        "/api/v1/incidents",
        json=script.create,
        headers={"Idempotency-Key": f"create-{script.index}"},
    )
    assert r.status_code == 201, r.text
    incident_id, version = r.json()["id"], r.json()["version"]
    accepted.titles[incident_id] = script.create["title"]
    accepted.writes.append((incident_id, version))
    for n, (kind, body) in enumerate(script.steps, 1):
        prefer = script.index + n  # one incident's writes alternate between the instances
        if kind == "note":
            r = await lb.call(
                prefer,
                "POST",
                f"/api/v1/incidents/{incident_id}/notes",
                json=body,
                headers={"Idempotency-Key": f"note-{script.index}-{n}"},
            )
            assert r.status_code == 201, r.text
        else:
            r = await lb.call(
                prefer,
                "POST",
                f"/api/v1/incidents/{incident_id}/transitions",
                json=body,
                headers={"If-Match": f'"{version}"'},
            )
            if r.status_code == 412:
                # An earlier attempt committed on an instance that died before answering.
                current = (await lb.call(prefer, "GET", f"/api/v1/incidents/{incident_id}")).json()
                assert (current["version"], current["status"]) == (version + 1, body["to"]), r.text
            else:
                assert r.status_code == 200, r.text
                assert r.json()["version"] == version + 1
        version += 1
        accepted.writes.append((incident_id, version))


# --- one run ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    incidents: dict[str, tuple[Any, ...]]
    history: dict[str, list[tuple[int, str]]]
    events: list[CloudEvent]
    accepted: Accepted
    served: dict[str, int]
    wave1_applied: list[float]
    published_before_kill: dict[str, float]
    published_after_kill: dict[str, float]
    leaders: list[str]
    holders_at_once: int
    leader_killed: str | None
    takeover_s: float | None
    migrations: list[int]
    ambiguous: int


def s2_incidents(events: list[CloudEvent]) -> set[str]:
    return {
        e.subject
        for e in events
        if e.type == "tandem.incident.created" and e.data["incident"].get("cause_deployment_id")
    }


async def list_all(lb: Balancer) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        path = "/api/v1/incidents?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = (await lb.call(0, "GET", path)).json()
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


async def run(
    broker: EmbeddedBroker, log_dir: Path, *, copies: int, kill_leader: bool, deployed_at: datetime
) -> Outcome:
    platform = PlatformSettings(
        kafka_bootstrap=broker.bootstrap,
        topic_prefix=f"s{uuid.uuid4().hex[:8]}.",
        auth_secret="scaleout-" + uuid.uuid4().hex,
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=500,
        kafka_request_timeout_ms=5000,
        relay_poll_interval_s=0.2,
        var_dir=log_dir,
    )
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
            f"TANDEM_{SERVICE.upper()}_DATABASE_URL": f"postgresql+asyncpg://{PG}/{database}",
        }
    )
    instances: list[Instance] = []
    sampler: asyncio.Task[None] | None = None
    try:
        migrations = await migrate_concurrently(SERVICE, env, copies)
        assert migrations[copies:] == [0] * copies, f"migrations failed: {migrations}"
        instances = [start_instance(SERVICE, f"{SERVICE}-{k}", env, log_dir) for k in range(copies)]
        async with (
            httpx.AsyncClient() as client,
            TopicWatcher(platform, platform.topic(SERVICE)) as topic,
        ):
            for instance in instances:
                await wait_ready(instance, client)

            async def group_formed() -> bool:
                return await consumer_group(platform, f"tandem-{CONSUMER}") == ("Stable", copies)

            await eventually(group_formed, timeout=60, interval=0.2)
            watch = RelayWatch(SERVICE, database, instances)
            sampler = asyncio.create_task(watch.run(f"postgresql://{PG}/{database}"))
            lb = Balancer(client, instances, auth_headers(platform, "practitioner", "load"))

            # Wave 1: failed deployments on every partition; the group splits them.
            await publish(platform, deployment_failures(1, deployed_at, platform.topic_partitions))
            await topic.wait_for(lambda evs: len(s2_incidents(evs)) == WAVE, timeout=60)
            wave1_applied = [
                await metric(
                    client, i, "tandem_events_consumed_total", consumer=CONSUMER, outcome="applied"
                )
                for i in instances
            ]

            accepted = Accepted()
            total = sum(1 + len(s.steps) for s in the_load())
            published_before: dict[str, float] = {}
            killed: list[str] = []
            takeover: list[float] = []

            async def kill_the_leader() -> None:
                """Once enough writes are in: SIGKILL the relay leader, then send wave 2."""
                while len(accepted.writes) < total * KILL_AT:
                    await asyncio.sleep(0.01)
                if kill_leader:
                    for instance in instances:
                        published_before[instance.name] = await metric(
                            client, instance, "tandem_events_published_total", service=SERVICE
                        )
                    leader = watch.current()
                    victim = next(i for i in instances if i.name == leader)
                    victim.kill()
                    killed.append(victim.name)
                    started = time.monotonic()
                    await eventually(
                        lambda: _async(watch.current() not in (None, leader)),
                        timeout=30,
                        interval=0.05,
                    )
                    takeover.append(time.monotonic() - started)
                await publish(
                    platform, deployment_failures(2, deployed_at, platform.topic_partitions)
                )

            sem = asyncio.Semaphore(8)

            async def bounded(script: Script) -> None:
                async with sem:
                    await play(script, lb, accepted)

            await asyncio.gather(kill_the_leader(), *(bounded(s) for s in the_load()))

            expected = set(accepted.writes)

            def complete(evs: list[CloudEvent]) -> bool:
                seen = {(e.subject, e.sequence) for e in evs}
                return expected <= seen and len(s2_incidents(evs)) == 2 * WAVE

            events = await topic.wait_for(complete, timeout=90)

            async def outbox_drained() -> bool:
                conn = await asyncpg.connect(f"postgresql://{PG}/{database}")
                try:
                    return (
                        await conn.fetchval(
                            "SELECT count(*) FROM outbox WHERE published_at IS NULL"
                        )
                        == 0
                    )
                finally:
                    await conn.close()

            await eventually(outbox_drained, timeout=30, interval=0.2)
            published_after = {
                i.name: await metric(client, i, "tandem_events_published_total", service=SERVICE)
                for i in instances
                if i.alive()
            }
            final = await list_all(lb)
            await asyncio.sleep(0.3)  # one more sample of the lock after everything settled
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

    titles = {i["id"]: i["title"] for i in final}
    history: dict[str, list[tuple[int, str]]] = defaultdict(list)
    seen_ids: set[uuid.UUID] = set()
    for event in events:
        if event.id not in seen_ids:
            seen_ids.add(event.id)
            history[titles[event.subject]].append((event.sequence, event.type))
    return Outcome(
        incidents={
            i["title"]: (
                i["status"],
                i["version"],
                i["priority"],
                i["major"],
                i["service"],
                i["environment"],
                i.get("cause_deployment_id"),
            )
            for i in final
        },
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


async def _async(value: object) -> object:
    return value


# --- the proof -------------------------------------------------------------------------------


async def test_two_instances_end_exactly_where_one_instance_ends(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    deployed_at = datetime.now(UTC) - timedelta(minutes=30)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = await run(broker, tmp_path / "one", copies=1, kill_leader=False, deployed_at=deployed_at)
    two = await run(broker, tmp_path / "two", copies=2, kill_leader=True, deployed_at=deployed_at)
    first, second = f"{SERVICE}-0", f"{SERVICE}-1"
    print(  # what happened, for the CI log (pytest -s or -rA)
        f"scale-out: writes {len(two.accepted.writes)} served {two.served}, wave-1 applied "
        f"{two.wave1_applied}, leaders {two.leaders}, takeover {two.takeover_s}s, "
        f"ambiguous retries {two.ambiguous}, migrations {two.migrations}"
    )

    # Migrations started by two pods at once end applied (a loser's restart finds them done).
    assert two.migrations[2:] == [0, 0]

    # The load really was spread: both instances served writes.
    assert set(two.served) == {first, second} and min(two.served.values()) > 0

    # Consumers split the partitions: both applied part of wave 1, together every event once.
    assert min(two.wave1_applied) > 0, two.wave1_applied
    assert sum(two.wave1_applied) == WAVE

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

    # Every accepted write's event is on the topic, exactly one event per incident version,
    # in order per incident (duplicates of a re-sent batch carry the same event id).
    for run_ in (one, two):
        by_version: dict[tuple[str, int], set[uuid.UUID]] = defaultdict(set)
        for event in run_.events:
            by_version[(event.subject, event.sequence)].add(event.id)
        assert all(len(ids) == 1 for ids in by_version.values())
        assert set(run_.accepted.writes) <= set(by_version)
        for title, history in run_.history.items():
            sequences = [seq for seq, _ in history]
            assert sequences == list(range(1, len(sequences) + 1)), title

    # The end state equals the one-instance run of the same load.
    assert len(one.incidents) == SCRIPTS + 2 * WAVE
    assert two.incidents == one.incidents
    assert two.history == one.history
