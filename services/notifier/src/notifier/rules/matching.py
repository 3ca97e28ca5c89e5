"""Which subscriptions want an event: by type, by the services it is about (or the teams that
own or run them), and by the priority it carries.

An event is about the service its snapshot names (``data.<aggregate>.service``), or the services
of a freeze (none listed: every service), or the catalog service itself (``data.service.name``);
a team's own events are about that team. ``min_priority`` passes only events that carry a
priority (incidents, a confirmed cause) at least that urgent (1 = P1 is the most urgent).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

#: Every event type the notifier hears, by aggregate (topics of contract sections 4 and 7).
EVENT_TYPES: dict[str, tuple[str, ...]] = {
    "incident": ("created", "updated", "transitioned", "annotated", "sla_breached",
                 "suspects_found", "cause_confirmed"),
    "change": ("created", "updated", "transitioned", "approval_recorded"),
    "freeze": ("created", "transitioned"),
    "standard_change": ("created", "updated", "transitioned"),
    "deployment": ("created", "updated", "transitioned", "gate_decided"),
    "service": ("created", "updated"),
    "team": ("created", "updated"),
    "review": ("created", "transitioned", "factor_added", "action_added", "action_closed",
               "due_breached"),
}
KNOWN_TYPES = frozenset(f"tandem.{a}.{v}" for a, verbs in EVENT_TYPES.items() for v in verbs)
#: What a subscription's ``types`` may hold: each known type and each aggregate's wildcard.
SUBSCRIBABLE_TYPES = (*sorted(KNOWN_TYPES), *(f"tandem.{a}.*" for a in EVENT_TYPES))


def type_problem(pattern: str) -> str | None:
    """Why ``pattern`` names no event type (``tandem.incident.created`` or
    ``tandem.incident.*``), or None."""
    if pattern in KNOWN_TYPES:
        return None
    parts = pattern.split(".")
    if len(parts) == 3 and parts[0] == "tandem" and parts[2] == "*" and parts[1] in EVENT_TYPES:
        return None
    return (f"{pattern!r} is not a Tandem event type; use one of the documented types or "
            f"tandem.<aggregate>.* with an aggregate of: {', '.join(EVENT_TYPES)}")


@dataclass(frozen=True)
class EventFacts:
    """What a subscription's filters look at in an event."""

    type: str
    #: The services it is about; ``None``: every service (a freeze of all services).
    services: frozenset[str] | None
    team: str | None = None
    priority: int | None = None


def event_facts(event_type: str, data: Mapping[str, Any]) -> EventFacts:
    """The facts of an event of ``event_type`` with ``data`` (a snapshot under its aggregate)."""
    aggregate = event_type.split(".")[1]
    snapshot = data.get(aggregate)
    snapshot = snapshot if isinstance(snapshot, Mapping) else {}
    services: frozenset[str] | None = frozenset()
    team = None
    if aggregate == "freeze":
        listed = snapshot.get("services") or []
        services = frozenset(s for s in listed if isinstance(s, str)) or None
    elif aggregate == "service":
        services = frozenset([n]) if isinstance(n := snapshot.get("name"), str) else frozenset()
    elif aggregate == "team":
        team = snapshot.get("name") if isinstance(snapshot.get("name"), str) else None
    elif isinstance(s := snapshot.get("service"), str):
        services = frozenset([s])
    priority = snapshot.get("priority") if aggregate == "incident" else None
    if priority is None and isinstance(data.get("priority"), int):
        priority = data["priority"]
    if not isinstance(priority, int) or isinstance(priority, bool):
        priority = None
    return EventFacts(event_type, services, team, priority)


@dataclass(frozen=True)
class SubscriptionFilter:
    """A subscription's filters; an empty list lets everything through."""

    types: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    min_priority: int | None = None


def wants(f: SubscriptionFilter, facts: EventFacts,
          teams_of: Mapping[str, Iterable[str | None]]) -> bool:
    """Whether a subscription with filter ``f`` wants the event; ``teams_of`` is each service's
    owner and operations team as the catalog says."""
    if f.types and not any(fnmatchcase(facts.type, p) for p in f.types):
        return False
    if f.services and facts.services is not None and not facts.services & set(f.services):
        return False
    if f.teams and facts.services is not None:
        teams = {t for s in facts.services for t in teams_of.get(s, ()) if t}
        if facts.team is not None:
            teams.add(facts.team)
        if not teams & set(f.teams):
            return False
    if f.min_priority is not None:
        return facts.priority is not None and facts.priority <= f.min_priority
    return True
