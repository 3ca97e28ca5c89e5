"""Concurrent writers of one service or one team (SQLite and PostgreSQL): of N edits with one
If-Match exactly one wins, N different edits leave one history whose sequences strictly
increase, and racing imports and registrations create each new name once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from itertools import pairwise
from typing import Any

import pytest
from catalog_support import Catalog, descriptors, replica, unique

from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARALLEL = 8


async def created(svc: Catalog, kind: str) -> dict[str, Any]:
    r = await svc.client.post(f"/api/v1/{kind}", json={"name": unique()}, headers=svc.headers())
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


EDITS = {"services": [{"tier": 1 + i % 4, "title": f"edit {i}"} for i in range(PARALLEL)],
         "teams": [{"members": [f"member-{i}"], "title": f"edit {i}"} for i in range(PARALLEL)]}


@pytest.mark.parametrize("kind", ["services", "teams"])
async def test_parallel_edits_with_one_if_match_have_exactly_one_winner(
        svc: Catalog, kind: str) -> None:
    resource = await created(svc, kind)
    answers = await asyncio.gather(*(
        svc.client.patch(f"/api/v1/{kind}/{resource['id']}", json=edit,
                         headers={**svc.headers(), "If-Match": '"1"'})
        for edit in EDITS[kind]))
    codes = Counter(r.status_code for r in answers)
    assert (codes[200], codes[412]) == (1, PARALLEL - 1), codes
    stored = await svc.get(f"/api/v1/{kind}/{resource['id']}")
    assert stored["version"] == 2
    events = await svc.events_about(resource["id"], lambda evs: len(evs) >= 2)
    assert [e.sequence for e in events] == [1, 2]


@pytest.mark.parametrize("kind", ["services", "teams"])
async def test_parallel_different_edits_leave_one_history(svc: Catalog, kind: str) -> None:
    resource = await created(svc, kind)
    answers = await asyncio.gather(*(
        svc.client.patch(f"/api/v1/{kind}/{resource['id']}", json=edit, headers=svc.headers())
        for edit in EDITS[kind]))
    assert {r.status_code for r in answers} == {200}
    stored = await svc.get(f"/api/v1/{kind}/{resource['id']}")
    assert stored["version"] == 1 + PARALLEL
    events = await svc.events_about(resource["id"],
                                    lambda evs: len(evs) >= stored["version"])
    assert [e.sequence for e in events] == list(range(1, PARALLEL + 2))
    # Each edit saw the one before it: the changes chain without a gap.
    titles = [e.data["changes"]["title"] for e in events[1:]]
    assert all(a[1] == b[0] for a, b in pairwise(titles)), titles


async def test_racing_imports_of_new_names_create_each_once(svc: Catalog) -> None:
    name, dev, ops = unique("pay"), unique("dev"), unique("ops")
    text = descriptors(name, dev, ops)
    answers = await asyncio.gather(*(svc.import_yaml(text) for _ in range(PARALLEL)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    outcomes = Counter(tuple(r.json()["services"]["created"]) for r in answers)
    assert outcomes[(name,)] == 1 and outcomes[()] == PARALLEL - 1
    service = await svc.get(f"/api/v1/services/{name}")
    assert service["version"] == 1


async def test_racing_registrations_of_one_new_name_register_it_once(svc: Catalog) -> None:
    """Deployments of one new service on many subjects (so many partitions, shared by two
    catalog processes in one consumer group) register it once."""
    name = unique("racer")

    async def found() -> object:
        r = await svc.client.get(f"/api/v1/services/{name}", headers=svc.headers("viewer"))
        return r.json() if r.status_code == 200 else None

    def created_events(events: list[Any]) -> list[Any]:
        return [e for e in events if e.type == "tandem.service.created"
                and e.data["service"]["name"] == name]

    async with replica(svc):
        # Time for the group to rebalance, so both processes hold partitions and race; the
        # outcome asserted below must hold whether they did or not.
        await asyncio.sleep(2.5)
        await asyncio.gather(*(svc.publish(
            "deployments", "tandem.deployment.created", dep["id"], {"deployment": dep})
            for dep in ({"id": str(uuid.uuid4()), "number": "DEP0000001", "service": name,
                         "environment": "production", "status": "requested"}
                        for _ in range(4 * PARALLEL))))
        service = await eventually(found)
        await svc.watcher.wait_for(lambda evs: bool(created_events(evs)))
        await asyncio.sleep(1.0)
    await svc.watcher.poll()
    # One registration: one created event. (Two processes over one SQLite file each relay its
    # outbox, so the topic may carry that one event twice, with one id; consumers' inboxes
    # apply it once. On PostgreSQL one relay holds the lock.)
    assert len({e.id for e in created_events(svc.watcher.events())}) == 1
    assert service["version"] == 1  # type: ignore[index]
