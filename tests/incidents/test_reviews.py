"""Post-incident reviews over the real broker, on SQLite and PostgreSQL: a resolved P1 gets
its review with the cross-service timeline, the cause and the failure's value-stream times; an
action item naming the emergency change closes itself when that change's production
deployment succeeds; an overdue review is breached once; the Markdown export and the metrics."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from incidents_support import (
    CatalogFeed,
    Running,
    change_event,
    deployment,
    known_as_run_by,
    run_deployment,
    unique_service,
)

from incidents.models import DeploymentView, FreezeView
from incidents.reviews import check_due_once
from incidents.rules.reviews import add_working_days
from tandem.db import Database
from tandem.events import new_event
from tandem_testing import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")

RESOLVE = {"resolution_code": "resolved_by_change", "resolution_notes": "hotfix deployed"}


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def emergency_change(service: str, incident_id: str | None) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "number": f"CHG{uuid.uuid4().int % 10**7:07d}",
            "type": "emergency", "title": "Hotfix card vault timeout", "service": service,
            "environment": "production", "status": "scheduled", "planned_start": None,
            "planned_end": None, "incident_id": incident_id, "deployment_id": None,
            "close_code": None}


def freeze_event(service: str, incident_id: str, starts: datetime) -> Any:
    snapshot = {"id": str(uuid.uuid4()), "number": f"FRZ{uuid.uuid4().int % 10**7:07d}",
                "services": [service], "environments": ["production"],
                "starts_at": starts.isoformat(), "ends_at": None, "status": "active",
                "source": "incident", "incident_id": incident_id,
                "reason": "open P1 incident", "created_by": "tandem-changes",
                "ended_at": None, "allowed_transitions": ["ended"], "version": 1}
    return snapshot, new_event(service="changes", type="tandem.freeze.created",
                               subject=snapshot["id"], sequence=1, actor="tandem-changes",
                               data={"freeze": snapshot})


async def owned_service(svc: Running) -> str:
    service = unique_service()
    await CatalogFeed(svc).service(service, owner="pay-dev", operations="pay-ops")
    await known_as_run_by(svc, service, "pay-ops")
    return service


async def known_in_view(svc: Running, table: Any, id_: str, **fields: Any) -> None:
    """Once this service's projection holds the row (with ``fields``)."""
    db = Database(svc.url, topic=svc.platform.topic("incidents"))
    try:
        async def check() -> bool:
            async with db.sessionmaker() as session:
                row = await session.get(table, uuid.UUID(id_))
                return row is not None and all(getattr(row, k) == v for k, v in fields.items())
        await eventually(check)
    finally:
        await db.dispose()


async def review_of(svc: Running, incident: dict[str, Any]) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        r = await svc.client.get(f"/api/v1/reviews/{incident['number']}",
                                 headers=svc.headers("viewer"))
        return r.json() if r.status_code == 200 else None
    return await eventually(found)  # type: ignore[return-value]


async def test_a_resolved_p1_gets_a_review_with_its_timeline(svc: Running) -> None:
    service = await owned_service(svc)
    earlier = deployment(service, started=datetime.now(UTC) - timedelta(minutes=30))
    await run_deployment(svc, earlier, "in_progress", "succeeded")
    incident = await svc.create(service=service, impact=1, urgency=1, title="Card payments fail")
    assert incident["priority"] == 1 and incident["major"]
    freeze, event = freeze_event(service, incident["id"], parse(incident["reported_at"]))
    await svc.publish("changes", event)
    await svc.move(incident, "acknowledged")
    await svc.move(incident, "in_progress")
    await known_in_view(svc, FreezeView, freeze["id"])
    await known_in_view(svc, DeploymentView, earlier["id"], status="succeeded")
    resolved = (await svc.move(incident, "resolved", **RESOLVE)).json()

    review = await review_of(svc, incident)
    assert review["number"].startswith("PIR")
    assert review["status"] == "open"
    assert (review["owner_team"], review["participant_team"]) == ("pay-ops", "pay-dev")
    assert review["incident_number"] == incident["number"]
    resolved_at = parse(resolved["resolved_at"])
    assert parse(review["due_at"]) == add_working_days(resolved_at, 5)
    refs = [(e["kind"], e["ref"]) for e in review["timeline"]]
    assert ("deployment", earlier["number"]) in refs
    assert ("incident", incident["number"]) in refs
    assert ("freeze", freeze["number"]) in refs
    assert refs.index(("deployment", earlier["number"])) < refs.index(
        ("incident", incident["number"]))
    times = [parse(e["time"]) for e in review["timeline"]]
    assert times == sorted(times)
    # The failure's value stream: opened -> acknowledged -> mitigated (= resolved) -> resolved,
    # each figure from the incident's own times.
    reported, acked = parse(resolved["reported_at"]), parse(resolved["acknowledged_at"])
    stages = {s["stage"]: s for s in review["stream"]}
    assert set(stages) == {"response", "mitigation", "resolution"}
    assert stages["response"]["wait_s"] == pytest.approx((acked - reported).total_seconds(),
                                                         abs=1e-3)
    assert stages["response"]["work_s"] == 0
    assert stages["mitigation"]["work_s"] == pytest.approx(
        (resolved_at - acked).total_seconds(), abs=1e-3)
    assert stages["mitigation"]["team"] == "pay-ops"
    assert stages["resolution"]["wait_s"] + stages["resolution"]["work_s"] == 0
    assert review["cause"]["status"] == "unknown"

    created = await svc.events_about(review["id"], until=lambda evs: any(
        e.type == "tandem.review.created" for e in evs))
    assert [e.type for e in created].count("tandem.review.created") == 1

    # Reopened and resolved again, it keeps its one review.
    assert (await svc.move(incident, "in_progress")).status_code == 200
    assert (await svc.move(incident, "resolved", **RESOLVE)).status_code == 200
    again = await svc.client.get("/api/v1/reviews", params={"service": service},
                                 headers=svc.headers("viewer"))
    assert [r["id"] for r in again.json()["items"]] == [review["id"]]

    # A P3 resolved gets no review.
    minor = await svc.create(service=service, impact=2, urgency=2)
    await svc.move(minor, "resolved", **RESOLVE)
    r = await svc.client.get(f"/api/v1/reviews/{minor['number']}",
                             headers=svc.headers("viewer"))
    assert r.status_code == 404


async def test_the_incidents_freeze_heard_after_the_review_opened_joins_its_timeline(
        svc: Running) -> None:
    service = await owned_service(svc)
    incident = await svc.create(service=service, impact=1, urgency=1, title="Login fails")
    resolved = (await svc.move(incident, "resolved", **RESOLVE)).json()
    review = await review_of(svc, incident)
    assert not [e for e in review["timeline"] if e["kind"] == "freeze"]

    # The changes service's freeze for the incident, and its end a while after the resolve
    # (the changes service heard it late), both arrive after the review opened.
    freeze, began = freeze_event(service, incident["id"], parse(incident["reported_at"]))
    ended_at = parse(resolved["resolved_at"]) + timedelta(seconds=5)
    ended = {**freeze, "status": "ended", "ended_at": ended_at.isoformat(),
             "allowed_transitions": [], "version": 2}
    await svc.publish("changes", began)
    await svc.publish("changes", new_event(
        service="changes", type="tandem.freeze.transitioned", subject=freeze["id"],
        sequence=2, actor="tandem-changes",
        data={"freeze": ended, "from": "active", "to": "ended", "reason": "incident resolved"}))

    async def with_both() -> dict[str, Any] | None:
        now = await review_of(svc, incident)
        texts = [e["text"] for e in now["timeline"] if e["ref"] == freeze["number"]]
        return now if texts == ["freeze began: open P1 incident", "freeze ended"] else None

    updated = await eventually(with_both)
    assert updated["version"] > review["version"]
    # Each freeze event heard brought one timeline_updated; the last carries the end.
    events = await svc.events_about(review["id"], until=lambda evs: [
        e.type for e in evs].count("tandem.review.timeline_updated") >= 2)
    updates = [e for e in events if e.type == "tandem.review.timeline_updated"]
    assert len(updates) == 2
    assert updates[-1].data["review"]["timeline"][-1]["text"] == "freeze ended"

    # A person's freeze of the service during the incident joins it too; a freeze of
    # another service leaves the review alone.
    elsewhere, _ = freeze_event(unique_service(), incident["id"], parse(incident["reported_at"]))
    elsewhere = {**elsewhere, "incident_id": None, "source": "manual", "reason": "other"}
    await svc.publish("changes", new_event(
        service="changes", type="tandem.freeze.created", subject=elsewhere["id"], sequence=1,
        actor="olivia", data={"freeze": elsewhere}))
    await known_in_view(svc, FreezeView, elsewhere["id"])
    assert (await review_of(svc, incident))["version"] == updated["version"]
    person, _ = freeze_event(service, incident["id"], parse(incident["reported_at"]))
    person = {**person, "incident_id": None, "source": "manual", "reason": "hands off"}
    await svc.publish("changes", new_event(
        service="changes", type="tandem.freeze.created", subject=person["id"], sequence=1,
        actor="olivia", data={"freeze": person}))

    async def with_persons() -> bool:
        now = await review_of(svc, incident)
        return any(e["ref"] == person["number"] for e in now["timeline"])

    await eventually(with_persons)


async def test_an_action_on_the_emergency_change_closes_when_its_deployment_succeeds(
        svc: Running) -> None:
    service = await owned_service(svc)
    incident = await svc.create(service=service, impact=1, urgency=1, title="Vault timeouts")
    fix = emergency_change(service, incident["id"])
    await svc.publish("changes", change_event("tandem.change.created", sequence=1, change=fix))
    await svc.move(incident, "resolved", **RESOLVE)
    review = await review_of(svc, incident)
    url = f"/api/v1/reviews/{review['number']}"
    ops = svc.headers("practitioner", "olga")

    factor = await svc.client.post(f"{url}/factors", headers=ops,
                                   json={"text": "The vault's timeout was never load tested."})
    assert factor.status_code == 201, factor.text
    assert factor.json()["status"] == "in_progress"

    unknown = await svc.client.post(f"{url}/actions", headers=ops,
                                    json={"title": "x", "change": "CHG9999999"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "change"

    async def add() -> dict[str, Any] | None:
        r = await svc.client.post(f"{url}/actions", headers=ops, json={
            "title": "Raise the vault client timeout", "change": fix["number"]})
        return r.json() if r.status_code == 201 else None
    action = await eventually(add)
    assert isinstance(action, dict)
    assert (action["status"], action["change_id"], action["team"]) == ("open", fix["id"],
                                                                       "pay-dev")

    # A staging deployment of the change closes nothing; the production one does.
    await run_deployment(svc, deployment(service, environment="staging", change_id=fix["id"]),
                         "in_progress", "succeeded")
    prod = deployment(service, change_id=fix["id"], started=datetime.now(UTC))
    await run_deployment(svc, prod, "in_progress", "succeeded")
    events = await svc.events_about(review["id"], until=lambda evs: any(
        e.type == "tandem.review.action_closed" for e in evs))
    closed = [e for e in events if e.type == "tandem.review.action_closed"]
    assert len(closed) == 1
    assert closed[0].data["deployment_id"] == prod["id"]
    assert closed[0].actor == "pipeline-ci"

    after = (await svc.client.get(url, headers=svc.headers("viewer"))).json()
    [item] = after["actions"]
    assert item["status"] == "closed"
    assert item["closed_by_deployment_number"] == prod["number"]

    markdown = (await svc.client.get(f"{url}/export", headers=svc.headers("viewer")))
    assert markdown.headers["content-type"].startswith("text/markdown")
    text = markdown.text
    assert f"# Post-incident review {review['number']}" in text
    assert "The vault's timeout was never load tested." in text
    assert f"closed by deployment {prod['number']}" in text

    metrics = (await svc.client.get("/api/v1/review-metrics", params={"team": "pay-ops"},
                                    headers=svc.headers("viewer"))).json()
    assert metrics["review_to_fix"]["count"] >= 1
    done = await svc.client.post(f"{url}/transitions", headers=ops,
                                 json={"to": "completed"})
    assert done.status_code == 200, done.text
    assert done.json()["completed_on_time"] is True
    assert "review" in {s["stage"] for s in done.json()["stream"]}
    late = await svc.client.post(f"{url}/factors", headers=ops, json={"text": "late"})
    assert late.status_code == 409


async def test_two_people_completing_one_version_of_a_review_have_one_winner(
        svc: Running) -> None:
    service = await owned_service(svc)
    incident = await svc.create(service=service, impact=2, urgency=1)  # P2: major
    await svc.move(incident, "resolved", **RESOLVE)
    review = await review_of(svc, incident)
    url = f"/api/v1/reviews/{review['id']}/transitions"
    headers = {**svc.headers("practitioner", "olga"), "If-Match": f'"{review["version"]}"'}
    answers = await asyncio.gather(*(svc.client.post(url, headers=headers,
                                                     json={"to": "completed"})
                                     for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [200, 412]
    events = await svc.events_about(review["id"], until=lambda evs: any(
        e.type == "tandem.review.transitioned" for e in evs))
    assert [e.data.get("to") for e in events
            if e.type == "tandem.review.transitioned"] == ["completed"]


async def test_a_review_past_its_due_date_is_breached_once(svc: Running) -> None:
    service = await owned_service(svc)
    incident = await svc.create(service=service, impact=1, urgency=2)  # P2: major
    await svc.move(incident, "resolved", **RESOLVE)
    review = await review_of(svc, incident)
    db = Database(svc.url, topic=svc.platform.topic("incidents"))
    try:
        later = parse(review["due_at"]) + timedelta(seconds=1)
        first = await check_due_once(db, now=later)
        again = await check_due_once(db, now=later + timedelta(hours=1))
    finally:
        await db.dispose()
    assert first >= 1 and again == 0
    events = await svc.events_about(review["id"], until=lambda evs: any(
        e.type == "tandem.review.due_breached" for e in evs))
    assert [e.type for e in events].count("tandem.review.due_breached") == 1
    shown = (await svc.client.get(f"/api/v1/reviews/{review['id']}",
                                  headers=svc.headers("viewer"))).json()
    assert shown["breached_at"] is not None
