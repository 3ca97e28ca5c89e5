"""The bounded mixed load per service, and the other services' events it consumes meanwhile.

Everything here is deterministic (titles, keys, times), so a one-instance run and a
two-instance run of the same workload must end in the same state.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiokafka.partitioner import murmur2

from tandem.events import CloudEvent, new_event

SCRIPTS = 24
WAVE = 12

Step = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Script:
    """One aggregate's life: created, then worked through notes and transitions."""

    index: int
    create: dict[str, Any]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Workload:
    """How to load one service and how to read its end state."""

    service: str
    plural: str
    #: The role the load's writes are made with.
    role: str
    #: A field whose value is unique per aggregate and the same in every run.
    key: str
    #: What the end states are compared on.
    state: Callable[[dict[str, Any]], tuple[Any, ...]]
    scripts: Callable[[datetime], list[Script]]
    #: The topic the service consumes that the waves of foreign events go to.
    wave_topic: str
    wave: Callable[[int, datetime, int], list[CloudEvent]]
    #: Aggregates the service creates by itself per wave event (S2 for incidents).
    derived_per_event: int = 0

    @property
    def consumer(self) -> str:
        return f"{self.service}-reactions"


def spread_keys(wave: int, partitions: int) -> list[uuid.UUID]:
    """``WAVE`` ids, the same in every run, whose keys land evenly on every partition."""
    per_partition: dict[int, int] = defaultdict(int)
    ids: list[uuid.UUID] = []
    n = 0
    while len(ids) < WAVE:
        candidate = uuid.uuid5(uuid.NAMESPACE_URL, f"tandem-scaleout/{wave}/{n}")
        n += 1
        partition = (murmur2(str(candidate).encode()) & 0x7FFFFFFF) % partitions
        if per_partition[partition] < max(1, WAVE // partitions):
            per_partition[partition] += 1
            ids.append(candidate)
    return ids


# --- incidents -------------------------------------------------------------------------------


def incident_scripts(_: datetime) -> list[Script]:
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
        steps: tuple[Step, ...]
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
    """Failed production deployments, each of its own service, so no incident's suspects
    depend on which consumer was faster."""
    events = []
    for n, deployment_id in enumerate(spread_keys(wave, partitions)):
        snapshot = {
            "id": str(deployment_id),
            "number": f"DEP{wave}{n:06d}",
            "service": f"target-{wave}-{n}",
            "environment": "production",
            "version": f"1.{wave}.{n}",
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


INCIDENTS = Workload(
    service="incidents",
    plural="incidents",
    role="practitioner",
    key="title",
    state=lambda i: (
        i["status"],
        i["version"],
        i["priority"],
        i["major"],
        i["service"],
        i["environment"],
        i.get("cause_deployment_id"),
    ),
    scripts=incident_scripts,
    wave_topic="deployments",
    wave=deployment_failures,
    derived_per_event=1,
)


# --- changes and deployments: foreign events are incidents they project ----------------------


def staging_incidents(wave: int, at: datetime, partitions: int) -> list[CloudEvent]:
    """Low-priority staging incidents: projected by changes and deployments, no freezes."""
    events = []
    for n, incident_id in enumerate(spread_keys(wave, partitions)):
        snapshot = {
            "id": str(incident_id),
            "number": f"INC{wave}{n:06d}",
            "title": f"noise {wave}-{n}",
            "service": f"noise-{wave}-{n}",
            "environment": "staging",
            "priority": 5,
            "major": False,
            "status": "new",
            "cause_deployment_id": None,
            "cause_change_id": None,
            "reported_at": at.isoformat(),
            "acknowledged_at": None,
            "resolved_at": None,
            "closed_at": None,
            "created_at": at.isoformat(),
            "updated_at": at.isoformat(),
            "version": 1,
            "impact": 3,
            "urgency": 3,
        }
        events.append(
            new_event(
                service="incidents",
                type="tandem.incident.created",
                subject=incident_id,
                sequence=1,
                actor="practitioner-user",
                data={"incident": snapshot},
            )
        )
    return events


def change_scripts(at: datetime) -> list[Script]:
    scripts = []
    for i in range(SCRIPTS):
        create = {
            "type": "standard",
            "title": f"scale-out change {i:02d}",
            "description": "bounded mixed load",
            "service": f"change-target-{i}",
            "environment": "staging",
            "planned_start": (at - timedelta(minutes=5)).isoformat(),
            "planned_end": (at + timedelta(hours=2)).isoformat(),
        }
        steps: tuple[Step, ...]
        if i % 3 == 0:
            steps = (
                ("transition", {"to": "scheduled", "reason": "pre-approved"}),
                ("transition", {"to": "implement", "reason": "window open"}),
                ("transition", {"to": "review", "reason": "done"}),
                ("transition", {"to": "closed", "reason": "verified", "close_code": "successful"}),
            )
        elif i % 3 == 1:
            steps = (
                ("transition", {"to": "scheduled", "reason": "pre-approved"}),
                ("transition", {"to": "canceled", "reason": "not needed"}),
            )
        else:
            steps = (("transition", {"to": "canceled", "reason": "superseded"}),)
        scripts.append(Script(i, create, steps))
    return scripts


CHANGES = Workload(
    service="changes",
    plural="changes",
    role="manager",
    key="title",
    state=lambda c: (
        c["status"],
        c["version"],
        c["type"],
        c["service"],
        c["environment"],
        c.get("close_code"),
    ),
    scripts=change_scripts,
    wave_topic="incidents",
    wave=staging_incidents,
)


def deployment_scripts(at: datetime) -> list[Script]:
    scripts = []
    committed = (at - timedelta(hours=1)).isoformat()
    for i in range(SCRIPTS):
        create = {
            "service": f"deploy-target-{i}",
            "environment": "staging",
            "version": f"2.0.{i}",
            "commits": [{"sha": f"{i:040x}", "committed_at": committed}],
        }
        steps: tuple[Step, ...]
        if i % 3 == 0:
            steps = (
                ("transition", {"to": "in_progress", "reason": "rolling out"}),
                ("transition", {"to": "succeeded", "reason": "healthy"}),
            )
        elif i % 3 == 1:
            steps = (
                ("transition", {"to": "in_progress", "reason": "rolling out"}),
                ("transition", {"to": "failed", "reason": "crash loop"}),
            )
        else:
            steps = (("transition", {"to": "canceled", "reason": "superseded"}),)
        scripts.append(Script(i, create, steps))
    return scripts


DEPLOYMENTS = Workload(
    service="deployments",
    plural="deployments",
    role="pipeline",
    key="service",
    state=lambda d: (
        d["status"],
        d["version"],
        d["service"],
        d["environment"],
        d["software_version"],
        d["gate"]["decision"],
    ),
    scripts=deployment_scripts,
    wave_topic="incidents",
    wave=staging_incidents,
)

WORKLOADS = [INCIDENTS, CHANGES, DEPLOYMENTS]
