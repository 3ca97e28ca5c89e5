"""The board: the dashboard's live picture, projected in memory from the topics.

Every event carries its aggregate's full snapshot (``data.<aggregate>``), so the board keeps
the newest snapshot per aggregate (by ``sequence``) and derives the panels from those: open
incidents with SLA clocks, their assignment group and their service's teams (the catalog's),
changes in flight, freezes, recent deployments, DORA per service, and the catalog's services
with the unowned ones marked as such.
"""

from __future__ import annotations

from collections import defaultdict, deque
from datetime import datetime, timedelta
from typing import Any

from dashboard.config import DashboardSettings
from tandem import dora
from tandem.db import utcnow
from tandem.events import CloudEvent
from tandem.value_stream import StateSpan

AGGREGATES = ("incident", "change", "freeze", "deployment", "service", "team", "review")
INCIDENT_CLOSED = frozenset({"resolved", "closed", "canceled"})
CHANGE_DONE = frozenset({"closed", "canceled"})
PRIORITY_NAMES = {1: "critical", 2: "high", 3: "moderate", 4: "low", 5: "planning"}


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string from a snapshot as an aware datetime; None when absent or invalid."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def event_services(event: CloudEvent) -> frozenset[str]:
    """The business services an event is about; ``*`` for a freeze covering every service."""
    snapshot = event.data.get(event.aggregate)
    if not isinstance(snapshot, dict):
        return frozenset()
    if event.aggregate == "freeze":
        services = snapshot.get("services")
        if isinstance(services, list):
            return frozenset(str(s) for s in services) if services else frozenset({"*"})
        return frozenset()
    if event.aggregate == "service":  # the catalog's: the service is the aggregate itself
        name = snapshot.get("name")
        return frozenset({name}) if isinstance(name, str) else frozenset()
    service = snapshot.get("service")
    return frozenset({service}) if isinstance(service, str) else frozenset()


def breach_kind(data: dict[str, Any]) -> str:
    """``response`` or ``resolution`` from an ``sla_breached`` event's ``data.breach``."""
    breach = data.get("breach") if isinstance(data.get("breach"), dict) else data
    return str(breach.get("kind") or "resolution")


def describe(event: CloudEvent) -> str:
    """A one-line human summary of an event, for the live feed."""
    data = event.data
    verb = event.type.rsplit(".", 1)[-1]
    if verb == "transitioned":
        return f"{data.get('from', '?')} → {data.get('to', '?')}"
    if verb == "updated" and isinstance(data.get("changes"), dict):
        return "changed " + ", ".join(sorted(data["changes"]))
    if verb == "gate_decided":
        gate = data.get("gate") if isinstance(data.get("gate"), dict) else {}
        return f"gate {gate.get('decision', '?')}"
    if verb == "sla_breached":
        return f"{breach_kind(data)} SLA breached"
    if verb == "approval_recorded":
        approval = data.get("approval") if isinstance(data.get("approval"), dict) else data
        return f"approval: {approval.get('decision', '?')}"
    if verb == "cause_confirmed":
        return "cause confirmed"
    if verb == "suspects_found":
        suspects = data.get("suspects")
        return f"{len(suspects) if isinstance(suspects, list) else 'some'} suspects found"
    return verb.replace("_", " ")


class Board:
    """The in-memory projection; ``apply`` every event once, read it with ``snapshot``."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.settings = settings
        self.aggregates: dict[str, dict[str, dict[str, Any]]] = {a: {} for a in AGGREGATES}
        self.sequences: dict[tuple[str, str], int] = {}
        self.touched: dict[tuple[str, str], datetime] = {}
        self.breaches: defaultdict[str, set[str]] = defaultdict(set)
        #: incident id -> the deployment a ``cause_confirmed`` named (as the deployments
        #: service reads it: the event's ``deployment_id`` over the snapshot's cause).
        self.confirmed_causes: dict[str, str] = {}
        #: deployment id -> when it was rolled back (its ``rolled_back`` transition).
        self.rolled_back_at: dict[str, datetime] = {}
        self.feed: deque[dict[str, Any]] = deque(maxlen=settings.feed_size)
        #: (aggregate, subject) -> who acted last on it (the last event's actor).
        self.actors: dict[tuple[str, str], str] = {}
        #: (aggregate, subject) -> each status it entered, with when (the value stream's
        #: wait and work); the snapshot's ``updated_at`` is the move's own time.
        self.histories: dict[tuple[str, str], list[StateSpan]] = {}
        self.last_event_id: str | None = None
        self.events_applied = 0
        self.caught_up = False
        self._dora_cache: tuple[tuple[int, datetime], list[dict[str, Any]]] | None = None

    def apply(self, event: CloudEvent, event_id: str) -> bool:
        """Fold one event in; False when it is not newer than what the board holds."""
        aggregate = event.aggregate
        key = (aggregate, event.subject)
        if event.sequence <= self.sequences.get(key, 0):
            return False
        self.sequences[key] = event.sequence
        self.touched[key] = event.time
        self.actors[key] = event.actor
        snapshot = event.data.get(aggregate)
        if aggregate in self.aggregates and isinstance(snapshot, dict):
            self.aggregates[aggregate][event.subject] = snapshot
            self.follow_status(key, snapshot, event.time)
        if event.type == "tandem.incident.sla_breached":
            self.breaches[event.subject].add(breach_kind(event.data))
        if event.type == "tandem.incident.cause_confirmed" and event.data.get("deployment_id"):
            self.confirmed_causes[event.subject] = str(event.data["deployment_id"])
        if (event.type == "tandem.deployment.transitioned"
                and event.data.get("to") == "rolled_back" and isinstance(snapshot, dict)):
            # The move's own time: the snapshot's ``updated_at`` (the event's is when written).
            moved = parse_time(snapshot.get("updated_at"))
            if moved is not None:
                self.rolled_back_at[event.subject] = moved
        self.feed.appendleft(self.feed_item(event, event_id))
        self.last_event_id = event_id
        self.events_applied += 1
        if self.events_applied % 500 == 0:
            self.prune(utcnow())
        return True

    def follow_status(self, key: tuple[str, str], snapshot: dict[str, Any],
                      fallback: datetime) -> None:
        status = snapshot.get("status")
        if not isinstance(status, str):
            return
        history = self.histories.setdefault(key, [])
        if history and history[-1].state == status:
            return
        since = (parse_time(snapshot.get("created_at")) if not history else None) or \
            parse_time(snapshot.get("updated_at")) or fallback
        history.append(StateSpan(status, since))

    def feed_item(self, event: CloudEvent, event_id: str) -> dict[str, Any]:
        snapshot = event.data.get(event.aggregate)
        snap = snapshot if isinstance(snapshot, dict) else {}
        return {
            "id": event_id,
            "type": event.type,
            "time": _iso(event.time),
            "subject": event.subject,
            "aggregate": event.aggregate,
            "number": snap.get("number"),
            "title": snap.get("title") or (snap.get("software_version")
                                            if event.aggregate == "deployment"
                                            else snap.get("reason") or snap.get("name")),
            "services": sorted(event_services(event)),
            "actor": event.actor,
            "summary": describe(event),
        }

    def prune(self, now: datetime) -> None:
        """Forget finished aggregates older than anything a panel or the DORA trend shows."""
        horizon = now - timedelta(days=max(self.settings.dora_window_days,
                                           7 * self.settings.trend_weeks,
                                           self.settings.value_stream_max_days) + 7)
        recent = now - timedelta(days=2)
        finished = {"incident": INCIDENT_CLOSED, "change": CHANGE_DONE,
                    "freeze": frozenset({"ended"}),
                    "deployment": dora.FINISHED_OUTCOMES | {"canceled"},
                    "service": frozenset(), "team": frozenset(),
                    "review": frozenset({"completed"})}
        # Changes stay as long as deployments: the value stream reads the ones they carried.
        keep_until = {"incident": horizon, "change": horizon, "freeze": recent,
                      "deployment": horizon, "service": horizon, "team": horizon,
                      "review": horizon}
        for aggregate, snapshots in self.aggregates.items():
            for subject, snap in list(snapshots.items()):
                key = (aggregate, subject)
                if (snap.get("status") in finished[aggregate]
                        and self.touched.get(key, now) < keep_until[aggregate]):
                    del snapshots[subject]
                    self.touched.pop(key, None)
                    self.actors.pop(key, None)
                    self.histories.pop(key, None)
                    self.breaches.pop(subject, None)
                    self.rolled_back_at.pop(subject, None)

    # -- reading ----------------------------------------------------------------------------

    def sla(self, incident: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Due times for response and resolution, from the snapshot or the default targets."""
        reported = parse_time(incident.get("reported_at")) or parse_time(incident.get("created_at"))
        given = incident.get("sla") if isinstance(incident.get("sla"), dict) else incident
        response_due = parse_time(given.get("response_due_at"))
        resolution_due = parse_time(given.get("resolution_due_at"))
        priority = incident.get("priority")
        targets = self.settings.sla_minutes.get(priority if isinstance(priority, int) else 0,
                                                (None, None))
        # Due times the incidents service computed win; None values never reach the wire,
        # so one present due time means the other has no target.
        own = "response_due_at" in given or "resolution_due_at" in given
        if reported is not None and not own:
            if response_due is None and targets[0] is not None:
                response_due = reported + timedelta(minutes=targets[0])
            if resolution_due is None and targets[1] is not None:
                resolution_due = reported + timedelta(minutes=targets[1])
        responded = bool(incident.get("acknowledged_at")) or incident.get("status") not in (
            "new", None)
        resolved = incident.get("status") in INCIDENT_CLOSED
        breached = set(self.breaches.get(str(incident.get("id")), set()))
        if not responded and response_due is not None and now > response_due:
            breached.add("response")
        if not resolved and resolution_due is not None and now > resolution_due:
            breached.add("resolution")
        return {"reported_at": _iso(reported), "response_due_at": _iso(response_due),
                "resolution_due_at": _iso(resolution_due), "responded": responded,
                "breached": sorted(breached)}

    def services_by_name(self) -> dict[str, dict[str, Any]]:
        """The catalog's services by name (the slug the other services' events carry)."""
        return {str(s.get("name")): s for s in self.aggregates["service"].values()}

    def incidents(self, now: datetime) -> dict[str, list[dict[str, Any]]]:
        open_, resolved = [], []
        catalog = self.services_by_name()
        for subject, snap in self.aggregates["incident"].items():
            service = catalog.get(str(snap.get("service")))
            item = {**snap, "sla": self.sla(snap, now),
                    "last_actor": self.actors.get(("incident", subject)),
                    "teams": {"owner_team": service.get("owner_team") if service else None,
                              "operations_team": (service.get("operations_team")
                                                  if service else None),
                              "in_catalog": service is not None}}
            (resolved if snap.get("status") in INCIDENT_CLOSED else open_).append(item)
        open_.sort(key=lambda i: (i.get("priority") or 9, i["sla"]["reported_at"] or ""))
        resolved.sort(key=lambda i: i.get("resolved_at") or i.get("updated_at") or "",
                      reverse=True)
        day_ago = now - timedelta(days=1)
        recent = [i for i in resolved
                  if (parse_time(i.get("resolved_at")) or parse_time(i.get("updated_at"))
                      or now) >= day_ago]
        return {"open": open_, "recently_resolved": recent[:8]}

    def changes_in_flight(self) -> list[dict[str, Any]]:
        items = [c for c in self.aggregates["change"].values()
                 if c.get("status") not in CHANGE_DONE]
        return sorted(items, key=lambda c: (c.get("planned_start") or "", c.get("number") or ""))

    def freezes(self, now: datetime) -> list[dict[str, Any]]:
        """Active and upcoming freezes; one whose window has passed shows as ended."""
        out = []
        for snap in self.aggregates["freeze"].values():
            ends = parse_time(snap.get("ends_at"))
            starts = parse_time(snap.get("starts_at"))
            if snap.get("status") == "ended" or (ends is not None and ends <= now):
                continue
            active = snap.get("status") == "active" or (starts is not None and starts <= now)
            out.append({**snap, "active": active})
        return sorted(out, key=lambda f: (not f["active"], f.get("starts_at") or ""))

    def recent_deployments(self) -> list[dict[str, Any]]:
        def moment(d: dict[str, Any]) -> str:
            return str(d.get("finished_at") or d.get("started_at") or d.get("updated_at")
                       or d.get("created_at") or "")

        items = sorted(({**d, "last_actor": self.actors.get(("deployment", subject))}
                        for subject, d in self.aggregates["deployment"].items()),
                       key=moment, reverse=True)
        return items[: self.settings.recent_deployments]

    def catalog(self) -> list[dict[str, Any]]:
        """The catalog's services, unowned ones first (no owner team written down)."""
        items = [{"name": s.get("name"), "title": s.get("title"), "tier": s.get("tier"),
                  "lifecycle": s.get("lifecycle"), "owner_team": s.get("owner_team"),
                  "operations_team": s.get("operations_team"),
                  "unowned": s.get("owner_team") is None, "source": s.get("source")}
                 for s in self.aggregates["service"].values()]
        return sorted(items, key=lambda s: (not s["unowned"], s["tier"] or 9,
                                            str(s["name"] or "")))

    def dora(self, now: datetime) -> list[dict[str, Any]]:
        """DORA per service for the configured environment, each metric with a weekly trend."""
        # Many screens refresh after each event; the figures change only with events or time.
        key = (self.events_applied, now.replace(second=0, microsecond=0))
        if self._dora_cache is not None and self._dora_cache[0] == key:
            return self._dora_cache[1]
        result = self._compute_dora(now)
        self._dora_cache = (key, result)
        return result

    def dora_records(self) -> tuple[dict[str, list[dora.DeploymentRecord]],
                                    dict[str, list[dora.IncidentRecord]]]:
        """The deployments and incidents of the DORA environment, by service, as
        :mod:`tandem.dora` takes them (the deployments service hands it the same records)."""
        env = self.settings.dora_environment
        deployments: defaultdict[str, list[dora.DeploymentRecord]] = defaultdict(list)
        incidents: defaultdict[str, list[dora.IncidentRecord]] = defaultdict(list)
        for subject, inc in self.aggregates["incident"].items():
            reported = parse_time(inc.get("reported_at")) or parse_time(inc.get("created_at"))
            if inc.get("environment") != env or reported is None:
                continue
            cause = self.confirmed_causes.get(subject) or inc.get("cause_deployment_id")
            incidents[str(inc.get("service"))].append(dora.IncidentRecord(
                id=subject, service=str(inc.get("service")), reported_at=reported,
                resolved_at=parse_time(inc.get("resolved_at")),
                cause_deployment_id=str(cause) if cause else None))
        for subject, dep in self.aggregates["deployment"].items():
            if dep.get("environment") != env or not isinstance(dep.get("service"), str):
                continue
            status = str(dep.get("status"))
            finished = parse_time(dep.get("finished_at"))
            deployed = finished if status in dora.DEPLOYED_OUTCOMES else None
            commits = dep.get("commits") if isinstance(dep.get("commits"), list) else []
            committed = [t for c in commits if isinstance(c, dict)
                         if (t := parse_time(c.get("committed_at"))) is not None]
            deployments[dep["service"]].append(dora.DeploymentRecord(
                id=subject, service=dep["service"], status=status, deployed_at=deployed,
                finished_at=finished,
                rolled_back_at=self.rolled_back_at.get(subject) if status == "rolled_back"
                else None,
                lead_times_s=dora.lead_times(committed, deployed) if deployed else (),
                rework=dep.get("rework") is True))
        return deployments, incidents

    def _compute_dora(self, now: datetime) -> list[dict[str, Any]]:
        deployments, incidents = self.dora_records()
        buckets = self.settings.dora_buckets
        start = now - timedelta(days=self.settings.dora_window_days)
        out = []
        for service in sorted(deployments):
            records, named = deployments[service], incidents.get(service, [])
            metrics = dora.report(records, named, start=start, end=now, buckets=buckets)
            trends: dict[str, list[float | None]] = {name: [] for name in metrics}
            for week in range(self.settings.trend_weeks - 1, -1, -1):
                w_end = now - timedelta(days=7 * week)
                weekly = dora.report(records, named, start=w_end - timedelta(days=7),
                                     end=w_end, buckets=buckets)
                for name, metric in weekly.items():
                    trends[name].append(metric.value)
            out.append({"service": service, "environment": self.settings.dora_environment,
                        "window_days": self.settings.dora_window_days,
                        "metrics": {name: {"value": m.value, "unit": m.unit,
                                           "sample_size": m.sample_size, "bucket": m.bucket,
                                           "trend": trends[name]}
                                    for name, m in metrics.items()}})
        return out

    def snapshot(self, now: datetime | None = None) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        now = now or utcnow()
        return {
            "generated_at": _iso(now),
            "last_event_id": self.last_event_id,
            "caught_up": self.caught_up,
            "events_applied": self.events_applied,
            "incidents": self.incidents(now),
            "changes": self.changes_in_flight(),
            "freezes": self.freezes(now),
            "deployments": self.recent_deployments(),
            "services": self.catalog(),
            "dora": self.dora(now),
            "dora_weeks": self.settings.trend_weeks,
            "priorities": PRIORITY_NAMES,
            "feed": list(self.feed),
        }
