"""The foundation's end-to-end path inside the incidents service: API -> DB + outbox -> topic."""

from __future__ import annotations

from incidents.config import MIGRATIONS_DIR, IncidentsSettings
from incidents.main import create_app
from tandem.migrations import upgrade
from tandem.settings import PlatformSettings
from tandem_testing import TopicWatcher, auth_headers, running_service


async def test_created_incident_is_published_once_with_its_snapshot(platform: PlatformSettings,
                                                                    new_database) -> None:
    url = await new_database("incidents")
    upgrade(MIGRATIONS_DIR, url)
    app = create_app(platform, IncidentsSettings(database_url=url))
    async with running_service(app) as client, \
            TopicWatcher(platform, platform.topic("incidents")) as watcher:
        r = await client.post("/api/v1/incidents", headers=auth_headers(platform, "practitioner"),
                              json={"title": "API down", "service": "api",
                                    "environment": "production", "impact": 1, "urgency": 1})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["priority"] == 1 and body["major"] is True
        assert body["number"] == "INC0000001"
        assert r.headers["location"] == f"/api/v1/incidents/{body['id']}"
        events = await watcher.wait_for(lambda evs: any(e.subject == body["id"] for e in evs))
        mine = [e for e in events if e.subject == body["id"]]
        assert len(mine) == 1
        assert mine[0].type == "tandem.incident.created"
        assert mine[0].data["incident"]["number"] == "INC0000001"
        assert mine[0].sequence == 1
        assert mine[0].actor == "practitioner-user"
