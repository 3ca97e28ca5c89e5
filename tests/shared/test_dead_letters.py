"""Dead letters people can work: listed with their error and origin, replayed after a fix,
discarded with a reason, counted from the start; forged and far-ahead events are kept out
(SQLite and PostgreSQL)."""

from __future__ import annotations

import prometheus_client
from aiokafka import AIOKafkaProducer
from tests.shared.probe_service import create_probe_app, create_schema, effects, signal

from tandem.events import new_event
from tandem.kafka import ensure_topics
from tandem.settings import PlatformSettings
from tandem_testing import auth_headers, eventually, running_service


async def _publish(platform: PlatformSettings, *messages: tuple[bytes, bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=platform.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(platform.topic("signals"), value=value, key=key)
    finally:
        await producer.stop()


def _depth() -> float:
    return prometheus_client.REGISTRY.get_sample_value(
        "tandem_dead_letters", {"consumer": "notes-reactions"}) or 0.0


async def _letters(client, headers, status: str = "open") -> list[dict]:  # type: ignore[no-untyped-def]
    r = await client.get(f"/api/v1/dead-letters?status={status}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]  # type: ignore[no-any-return]


async def test_dead_letters_are_listed_replayed_and_discarded(
    platform: PlatformSettings, new_database
) -> None:
    url = await new_database("notes")
    await create_schema(url)
    await ensure_topics(platform, [platform.topic("signals")])
    manager = auth_headers(platform, "manager")
    failing = signal("f", 1, fail=True)
    forged = new_event(service="incidents", type="tandem.signal.sent", subject="k", sequence=2,
                       actor="intruder", data={})
    ahead = signal("k", 10**9)
    good = signal("k", 3)
    app = create_probe_app(platform, url)
    async with running_service(app) as client:
        await eventually(lambda: app.state.runtime.consumers[0].started.is_set())
        assert _depth() == 0  # counted before the first one
        await _publish(platform, (b"k", b"{not json"), (b"f", failing.to_bytes()),
                       (b"k", forged.to_bytes()), (b"k", ahead.to_bytes()),
                       (b"k", good.to_bytes()))
        # The real event behind them is applied: neither the forged nor the far-ahead one
        # made it stale.
        await eventually(lambda: _effect_ids(url, {good.id}))

        async def four_letters() -> list[dict]:  # type: ignore[type-arg]
            letters = await _letters(client, manager)
            return letters if len(letters) == 4 else []

        letters = {(d["error_type"], d["status"]): d for d in await eventually(four_letters)}
        assert set(letters) == {("PoisonMessage", "dead"), ("RuntimeError", "dead"),
                                ("HeldForReview", "held")}  # two poison: junk and forged
        assert _depth() == 4
        by_event = {d["event_id"]: d for d in await _letters(client, manager)}
        assert "claims source /tandem/incidents" in by_event[str(forged.id)]["error"]
        shown = await client.get(f"/api/v1/dead-letters/{by_event[str(failing.id)]['id']}",
                                 headers=manager)
        assert shown.json()["event"]["id"] == str(failing.id)
        assert shown.json()["topic"] == platform.topic("signals")
        # Viewers may not see them.
        assert (await client.get("/api/v1/dead-letters",
                                 headers=auth_headers(platform, "viewer"))).status_code == 403

        # The failing one still fails: 409, and its attempts grow.
        still = await client.post(
            f"/api/v1/dead-letters/{by_event[str(failing.id)]['id']}/replay", headers=manager)
        assert still.status_code == 409, still.text
        assert still.json()["type"] == "urn:tandem:problem:replay-failed"
        after = await client.get(f"/api/v1/dead-letters/{by_event[str(failing.id)]['id']}",
                                 headers=manager)
        assert after.json()["attempts"] == platform.consumer_max_attempts + 1
        assert after.json()["status"] == "dead"
        # The held one is applied once a person replays it.
        held = await client.post(
            f"/api/v1/dead-letters/{by_event[str(ahead.id)]['id']}/replay", headers=manager)
        assert held.status_code == 200, held.text
        assert held.json()["outcome"] == "applied"
        assert await _effect_ids(url, {good.id, ahead.id})
        again = await client.post(
            f"/api/v1/dead-letters/{by_event[str(ahead.id)]['id']}/replay", headers=manager)
        assert again.status_code == 409
        # Discarded with a reason, it leaves the open list and stays findable.
        gone = await client.delete(
            f"/api/v1/dead-letters/{by_event[str(forged.id)]['id']}?reason=forged+by+a+test",
            headers=manager)
        assert gone.status_code == 200, gone.text
        assert gone.json()["note"] == "forged by a test"
        assert len(await _letters(client, manager)) == 2
        assert [d["note"] for d in await _letters(client, manager, "discarded")] == [
            "forged by a test"]
        assert _depth() == 2


async def _effect_ids(url: str, ids: set) -> bool:  # type: ignore[type-arg]
    return {e.event_id for e in await effects(url)} == ids
