"""The locking policy on deployments (SQLite and PostgreSQL): of parallel writers holding one
``If-Match`` exactly one wins, parallel different moves leave one history with strictly
increasing sequences on the topic, DORA facts agree with the winner, and a reaction racing a
transition writes after it, never beside it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from deployments_support import Stack, change_of, service_name
from sqlalchemy import select, text

from deployments.deployment import deployments
from deployments.lifecycle import transition
from deployments.models import DoraFact
from tandem.events import CloudEvent

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARALLEL = 9
FINISHES = ("succeeded", "failed", "canceled")


async def started(stack: Stack) -> tuple[str, dict[str, Any]]:
    """A production deployment of a service of its own, moved to ``in_progress`` (version 3)."""
    svc = service_name()
    dep = await stack.deploy(svc)
    r = await stack.client.post(f"/api/v1/deployments/{dep['id']}/transitions",
                                json={"to": "in_progress"}, headers=stack.headers())
    assert (r.status_code, r.json()["version"]) == (200, 3), r.text
    return svc, r.json()


async def history(stack: Stack, dep_id: str, length: int) -> list[CloudEvent]:
    """The deployment's events in topic order, once ``length`` of them have arrived."""
    events = await stack.watcher.wait_for(
        lambda evs: sum(e.subject == dep_id for e in evs) >= length)
    return [e for e in events if e.subject == dep_id]


async def stored_fact(stack: Stack, dep_id: str) -> DoraFact | None:
    async with stack.app.state.db.transaction(read_only=True) as session:
        return (await session.scalars(select(DoraFact).where(
            DoraFact.deployment_id == uuid.UUID(dep_id)))).first()  # type: ignore[arg-type]


async def dora(stack: Stack, svc: str) -> dict[str, Any]:
    r = await stack.client.get("/api/v1/dora", params={"service": svc},
                               headers=stack.headers("viewer"))
    assert r.status_code == 200, r.text
    return r.json()["metrics"]  # type: ignore[no-any-return]


def move(stack: Stack, dep_id: str, to: str, **headers: str) -> Any:
    return stack.client.post(f"/api/v1/deployments/{dep_id}/transitions",
                             json={"to": to, "reason": "race"}, headers=stack.headers(**headers))


async def test_parallel_starts_with_one_if_match_have_exactly_one_winner(
        stack: Stack, gate_mode: object) -> None:
    dep = await stack.deploy(service_name())
    answers = await asyncio.gather(*(move(stack, dep["id"], "in_progress", **{"If-Match": '"2"'})
                                     for _ in range(PARALLEL)))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 412: PARALLEL - 1}, codes
    assert all(r.json()["current_version"] == 3 for r in answers if r.status_code == 412)
    assert (await stack.get(dep["id"]))["version"] == 3
    mine = await history(stack, dep["id"], 3)
    assert [e.sequence for e in mine] == [1, 2, 3]


async def test_parallel_finishes_with_one_if_match_publish_one_outcome(
        stack: Stack, gate_mode: object) -> None:
    """The race this closes: succeeded, failed and canceled sent together with
    ``If-Match: "3"`` once answered 200 twice and published two events with sequence 4."""
    svc, dep = await started(stack)
    targets = [FINISHES[i % len(FINISHES)] for i in range(PARALLEL)]
    answers = await asyncio.gather(*(move(stack, dep["id"], to, **{"If-Match": '"3"'})
                                     for to in targets))
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 412: PARALLEL - 1}, codes
    winner = next(to for to, r in zip(targets, answers, strict=True) if r.status_code == 200)
    stored = await stack.get(dep["id"])
    assert (stored["status"], stored["version"]) == (winner, 4)

    mine = await history(stack, dep["id"], 4)
    assert [e.sequence for e in mine] == [1, 2, 3, 4]
    assert (mine[-1].data["from"], mine[-1].data["to"]) == ("in_progress", winner)
    fact = await stored_fact(stack, dep["id"])
    assert fact is not None and fact.outcome == winner
    assert fact.finished_at is not None
    assert (fact.deployed_at is not None) is (winner == "succeeded")
    metrics = await dora(stack, svc)
    # Only a deployment that reached production counts in the rates (a failed one is a failed
    # attempt, counted beside them); a canceled one counts nowhere.
    assert metrics["deployment_frequency"]["sample_size"] == (winner == "succeeded")
    assert metrics["change_failure_rate"]["sample_size"] == (winner == "succeeded")
    assert metrics["failed_deployment_attempts"]["value"] == (winner == "failed")
    if winner == "succeeded":
        assert metrics["change_failure_rate"]["value"] == 0.0


async def test_parallel_different_moves_leave_one_history(stack: Stack,
                                                          gate_mode: object) -> None:
    """Without ``If-Match`` each writer sees the state the one before it left: one finish wins,
    a rollback can only follow a success, every other move is refused (409)."""
    svc, dep = await started(stack)
    targets = [(*FINISHES, "rolled_back")[i % 4] for i in range(PARALLEL)]
    answers = await asyncio.gather(*(move(stack, dep["id"], to) for to in targets))
    assert set(Counter(r.status_code for r in answers)) <= {200, 409}
    won = sum(r.status_code == 200 for r in answers)
    mine = await history(stack, dep["id"], 3 + won)
    assert [e.sequence for e in mine] == list(range(1, 4 + won))
    moves = [e.data["to"] for e in mine[3:]]
    assert moves in ([finish] for finish in FINISHES) or moves == ["succeeded", "rolled_back"]
    assert Counter(to for to, r in zip(targets, answers, strict=True)
                   if r.status_code == 200) == Counter(moves)
    stored = await stack.get(dep["id"])
    assert (stored["status"], stored["version"]) == (moves[-1], 3 + won)
    fact = await stored_fact(stack, dep["id"])
    assert fact is not None and fact.outcome == moves[-1]
    assert (fact.rolled_back_at is not None) is (moves[-1] == "rolled_back")
    # Reached production: succeeded, or rolled back after it; failed and canceled never did.
    assert (await dora(stack, svc))["change_failure_rate"]["sample_size"] == (
        moves[-1] in ("succeeded", "rolled_back"))


@pytest.mark.parametrize("gate_mode", ["approval"], indirect=True)
async def test_a_reaction_waits_for_the_transition_holding_the_deployment(
        stack: Stack, gate_mode: object, db_kind: str) -> None:
    """The change authorizing an awaiting gate arrives while a writer holds the deployment:
    the reaction applies after that writer's cancel, sees a canceled deployment, and only links
    the change (one history: cancel 3, link 4; a canceled gate is not decided again)."""
    svc = service_name()
    dep = await stack.deploy(svc)
    assert dep["gate"]["decision"] == "awaiting"
    change = change_of(svc, "scheduled", deployment_id=dep["id"])
    db = stack.app.state.db
    async with db.transaction() as session:
        held = await deployments.get(session, dep["id"], for_update=True)
        await stack.change(change)
        if db_kind == "postgresql":
            # The reaction is queued behind this transaction's row lock.
            await wait_for_a_lock_waiter(session)
        else:
            # BEGIN IMMEDIATE keeps the reaction out until this commits; the wait only gives
            # the event time to arrive meanwhile (arriving later, it applies the same way).
            await asyncio.sleep(0.3)
        await transition(session, held, "canceled", "race", actor="pipeline-user")
    mine = await history(stack, dep["id"], 4)
    assert [(e.type.rsplit(".", 1)[1], e.sequence) for e in mine] == [
        ("created", 1), ("gate_decided", 2), ("transitioned", 3), ("updated", 4)]
    assert mine[3].data["changes"] == {"gate.change_id": [None, str(change["id"])]}
    stored = await stack.get(dep["id"])
    assert (stored["status"], stored["version"]) == ("canceled", 4)
    assert (stored["gate"]["decision"], stored["gate"]["change_id"]) == (
        "awaiting", str(change["id"]))


async def wait_for_a_lock_waiter(session: Any) -> None:
    """Until another backend of this database waits for a row lock (the consumer)."""
    async def waiting() -> int:
        return int(await session.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")) or 0)
    for _ in range(400):
        if await waiting():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the reaction never queued behind the held deployment")
