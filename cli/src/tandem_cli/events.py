"""``tandem events tail``: every event on the topics as it happens, one line each."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import logging
import time
from typing import Annotated, Any

import typer

from tandem.settings import PlatformSettings
from tandem_cli.api import command_group, fail

events_app = command_group("The event stream.")

#: The services that publish a topic (the dashboard only reads).
TOPICS = ("incidents", "changes", "deployments", "catalog", "notifier")
#: Each aggregate's human reference in its snapshot.
_AGGREGATES = ("incident", "change", "freeze", "standard_change", "deployment", "service",
               "team", "subscription")


def event_line(event: dict[str, Any]) -> str:
    """``time  type  number  #sequence  actor  status`` for one CloudEvent."""
    data = event.get("data") or {}
    snapshot = next((data[a] for a in _AGGREGATES if isinstance(data.get(a), dict)), {})
    ref = snapshot.get("number") or event.get("subject", "-")
    facts = []
    if "to" in data:
        facts.append(f"{data.get('from')} -> {data['to']}")
    elif snapshot.get("status"):
        facts.append(str(snapshot["status"]))
    elif snapshot.get("name"):  # the catalog's services and teams: named, not moved
        owner = snapshot.get("owner_team", "")
        facts.append(str(snapshot["name"]) + (" (unowned)" if owner is None else ""))
    if str(event.get("type", "")).startswith(("tandem.service.", "tandem.team.")) \
            and isinstance(data.get("changes"), dict) and data["changes"]:
        facts.append("changed " + ", ".join(sorted(data["changes"])))
    if isinstance(data.get("gate"), dict):
        facts.append(f"gate {data['gate'].get('decision')}")
    if data.get("decision"):
        facts.append(str(data["decision"]))
    moment = str(event.get("time", ""))[:19].replace("T", " ")
    return (f"{moment}  {event.get('type', '?'):<34} {ref:<11} #{event.get('sequence', '?'):<3} "
            f"{event.get('actor', '-'):<16} {' '.join(facts)}").rstrip()


#: How often tail asks the broker whether it is still there (and still holds its topics).
PROBE_S = 2.0


async def _tail(platform: PlatformSettings, topics: list[str], patterns: list[str],
                from_beginning: bool, count: int | None, idle: float | None,
                as_json: bool) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    from tandem.kafka import ReadPositions

    consumer = AIOKafkaConsumer(**platform.kafka_client_options(),
                                enable_auto_commit=False,
                                fetch_max_wait_ms=platform.kafka_fetch_max_wait_ms,
                                request_timeout_ms=platform.kafka_request_timeout_ms)
    printed = 0
    loop = asyncio.get_running_loop()
    try:
        try:
            await consumer.start()
        except KafkaError as exc:
            fail(f"cannot reach the broker at {platform.kafka_bootstrap} ({exc}); "
                 "set TANDEM_KAFKA_BOOTSTRAP")
        existing = await consumer.topics()
        partitions = [TopicPartition(t, p) for t in topics if t in existing
                      for p in sorted(consumer.partitions_for_topic(t) or [])]
        if not partitions:
            fail(f"none of the topics exist yet: {', '.join(topics)}")
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            # Where each partition ends now, explicitly: nothing already there is printed.
            for tp, end in (await consumer.end_offsets(partitions)).items():
                consumer.seek(tp, end)
        read = ReadPositions(platform)
        typer.echo(f"tail: following {', '.join(sorted({tp.topic for tp in partitions}))} "
                   f"from {'their start' if from_beginning else 'now'}", err=True)
        # The embedded broker may place a partition's end inside its last batch: what the first
        # fetch of a partition returns from before the start is not new.
        started_ms = int(time.time() * 1000)
        fresh = set(partitions) if not from_beginning else set()
        quiet_since = probed_at = loop.time()
        lost = False
        while count is None or printed < count:
            if loop.time() - probed_at >= PROBE_S:
                probed_at = loop.time()
                was_lost, lost = lost, await _probe(consumer, read, lost, platform.kafka_bootstrap)
                if was_lost and not lost:
                    # Time without a broker is not time without events: --idle counts afresh.
                    quiet_since = loop.time()
            batches = await consumer.getmany(timeout_ms=200)
            for tp, rs in batches.items():
                if tp in fresh:
                    fresh.discard(tp)
                    batches[tp] = [r for r in rs if r.timestamp >= started_ms]
                read.saw(tp.topic, tp.partition, rs[-1].offset, rs[-1].value)
            records = [r for rs in batches.values() for r in rs]
            if not records:
                if idle is not None and loop.time() - quiet_since > idle:
                    break
                continue
            quiet_since = loop.time()
            for record in sorted(records, key=lambda r: r.timestamp):
                try:
                    event = json.loads(record.value or b"")
                except ValueError:
                    continue
                if not isinstance(event, dict):
                    continue
                if patterns and not any(fnmatch.fnmatchcase(str(event.get("type")), p)
                                        for p in patterns):
                    continue
                typer.echo(json.dumps(event) if as_json else event_line(event))
                printed += 1
                if count is not None and printed >= count:
                    break
    finally:
        await consumer.stop()
    return printed


async def _probe(consumer: Any, read: Any, lost: bool, where: str) -> bool:
    """Say on stderr when the broker goes away and when it is back; returns whether it is away.
    A broker that came back without the events already read (a new embedded one) is followed
    from the start of what it holds."""
    try:
        await asyncio.wait_for(consumer.end_offsets(list(consumer.assignment())), PROBE_S * 2)
        reset = await asyncio.wait_for(read.lost(consumer), PROBE_S * 3)
    except Exception:
        if not lost:
            typer.echo(f"tail: lost the broker at {where}; waiting for it", err=True)
        return True
    if lost:
        typer.echo(f"tail: the broker at {where} is back", err=True)
    if reset:
        typer.echo("tail: the broker no longer holds what was read (a new broker); following "
                   "its topics from their start", err=True)
        for tp in reset:
            consumer.seek(tp, 0)
            read.forget(tp)
    return False


@events_app.command("tail")
def tail(
    event_type: Annotated[list[str] | None, typer.Option(
        "--type", help="Only these types; globs such as 'tandem.incident.*' work; repeatable")]
    = None,
    topic: Annotated[list[str] | None, typer.Option(
        help="incidents, changes, deployments, catalog or notifier (default: all); "
             "repeatable")] = None,
    from_beginning: Annotated[bool, typer.Option(
        "--from-beginning", help="Replay what the topics hold before following them")] = False,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many events")]
    = None,
    idle: Annotated[float | None, typer.Option(
        help="Stop after this many seconds without an event")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One CloudEvent JSON per line")]
    = False,
) -> None:
    """Follow the topics (no consumer group: nothing is committed) and print one line per event.

    The broker is TANDEM_KAFKA_BOOTSTRAP (default 127.0.0.1:9092).
    """
    names = topic or list(TOPICS)
    unknown = [n for n in names if n not in TOPICS]
    if unknown:
        fail(f"unknown topic {', '.join(unknown)}: use {', '.join(TOPICS)}", exit_code=2)
    platform = PlatformSettings()
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    # The client's own connection warnings would repeat the one-line error.
    client_log.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_tail(platform, [platform.topic(n) for n in names], event_type or [],
                              from_beginning, count, idle, as_json))
    finally:
        client_log.setLevel(level)


@events_app.command("replay")
def replay(
    service: Annotated[str, typer.Option(
        help="incidents, changes, deployments, catalog or notifier")],
    since: Annotated[str | None, typer.Option(
        help="Only events recorded since: -2h, -7d or an RFC 3339 time (default: all retained)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines")] = False,
) -> None:
    """Publish a service's retained events again, in order (consumers skip what they applied)."""
    from tandem_cli.api import Api, emit, iso, parse_when, reporting

    if service not in TOPICS:
        fail(f"unknown service {service}: use {', '.join(TOPICS)}", exit_code=2)
    body = {"since": iso(parse_when(since)) if since else None}
    with reporting(as_json), Api(service) as api:
        answer = api.post("/api/v1/events/replay", body)
    emit(answer, as_json, f"{answer['republished']} events of {service} will be published "
                          f"again to {answer['topic']}")
