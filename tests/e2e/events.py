"""Scenario 6: what a subscriber on the three topics sees, checked against the API's state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft202012Validator

from e2e.scenarios import COLLECTION
from e2e.stack import Stack
from tandem.events import CloudEvent
from tandem_testing import TopicWatcher, eventually

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events" / "schemas"


def load_schemas() -> dict[str, dict[str, Any]]:
    """Every published schema, by its ``$id`` and by its file name (``<type>.json``)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMAS.rglob("*.json")):
        schema = json.loads(path.read_text())
        found[path.name.removesuffix(".json").removesuffix(".schema")] = schema
        if isinstance(schema.get("$id"), str):
            found[schema["$id"]] = schema
    return found


def schema_for(schemas: dict[str, dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    for key in (event.get("dataschema"), event["type"]):
        if key in schemas:
            return schemas[key]
    raise AssertionError(f"no JSON Schema published for {event['type']} "
                         f"({event.get('dataschema')}) under {SCHEMAS}")


async def check_event_stream(stack: Stack, aggregates: set[tuple[str, str]]) -> None:
    """Every event of ``aggregates`` is on its topic once, in order, valid, up to its version."""
    schemas = load_schemas()
    assert schemas, f"no schemas under {SCHEMAS}"
    versions: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for kind, aggregate_id in aggregates:
            service, plural = COLLECTION[kind]
            r = await client.get(f"{stack.url(service)}/api/v1/{plural}/{aggregate_id}",
                                 headers=stack.headers("viewer"))
            assert r.status_code == 200, r.text
            # The ETag is the aggregate's version in every service (a deployment's ``version``
            # field is the software's).
            versions[aggregate_id] = int(r.headers["etag"].strip('W/"'))

    watchers = [TopicWatcher(stack.platform, stack.platform.topic(s))
                for s in ("incidents", "changes", "deployments")]
    for w in watchers:
        await w.__aenter__()
    try:
        async def all_seen() -> bool:
            for w in watchers:
                await w.poll()
            latest: dict[str, int] = {}
            for w in watchers:
                for e in w.events():
                    latest[e.subject] = max(latest.get(e.subject, 0), e.sequence)
            return all(latest.get(a, 0) >= v for a, v in versions.items())

        await eventually(all_seen, timeout=30)
        for w in watchers:
            by_subject: dict[str, list[dict[str, Any]]] = {}
            seen_ids: set[str] = set()
            # Offsets order the records of one partition; one subject stays on one partition.
            for partition, offset, value, headers in sorted(w.records, key=lambda r: r[:2]):
                raw = json.loads(value or b"{}")
                if raw.get("subject") not in versions:
                    continue
                assert ("content-type", b"application/cloudevents+json") in headers, headers
                CloudEvent.model_validate(raw)
                if raw["id"] in seen_ids:
                    continue  # at-least-once delivery: a subscriber drops redelivered ids
                seen_ids.add(raw["id"])
                by_subject.setdefault(raw["subject"], []).append(
                    {**raw, "_at": (partition, offset)})
            for subject, events in by_subject.items():
                sequences = [e["sequence"] for e in events]
                assert sequences == list(range(1, versions[subject] + 1)), (
                    f"{subject} on {w.topic}: sequences {sequences}, version "
                    f"{versions[subject]}: {[e['type'] for e in events]}")
                assert len({e["_at"][0] for e in events}) == 1, f"{subject}: several partitions"
                for e in events:
                    event = {k: v for k, v in e.items() if k != "_at"}
                    errors = sorted(Draft202012Validator(schema_for(schemas, event))
                                    .iter_errors(event), key=str)
                    assert not errors, (f"{event['type']} #{event['sequence']} breaks its "
                                        f"schema: {errors[0].message} at "
                                        f"{list(errors[0].absolute_path)}")
        seen = {e.subject for w in watchers for e in w.events()}
        missing = set(versions) - seen
        assert not missing, f"no events at all for {missing}"
    finally:
        for w in watchers:
            await w.__aexit__(None, None, None)
