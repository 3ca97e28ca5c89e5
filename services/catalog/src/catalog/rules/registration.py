"""Which services another service's event names: the ``service`` (incidents, changes,
deployments, standard changes) or ``services`` (freezes) of the snapshot it carries. A name
first seen this way is registered by itself, with no teams."""

from __future__ import annotations

from typing import Any

from catalog.rules.names import observed_name


def services_named(aggregate: str, data: dict[str, Any]) -> list[str]:
    """The service names the event's snapshot (``data.<aggregate>``) carries, sorted; names
    the other services would not accept are left out."""
    snapshot = data.get(aggregate)
    if not isinstance(snapshot, dict):
        return []
    found: set[str] = set()
    service = snapshot.get("service")
    if isinstance(service, str):
        found.add(service)
    services = snapshot.get("services")
    if isinstance(services, list):
        found.update(s for s in services if isinstance(s, str))
    return sorted(name for name in found if observed_name(name))
