"""A fact as a chat message a person reads in one glance: what happened, to which service, its
priority and status, who acted, and a link to the resource. One message per event, in Slack's
incoming-webhook shape (``{"text": ..., "blocks": [...]}``; ``text`` is the notification's own
line and the fallback for clients without blocks).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Each aggregate's collection in its service's API.
PLURALS = {"incident": "incidents", "change": "changes", "freeze": "freezes",
           "deployment": "deployments", "standard_change": "standard-changes",
           "service": "services", "team": "teams", "review": "reviews"}

_NOUNS = {"incident": "incident", "change": "change", "freeze": "freeze",
          "deployment": "deployment", "standard_change": "standard change template",
          "service": "service", "team": "team", "review": "post-incident review"}


def escape(text: object) -> str:
    """Text as Slack shows it literally (its three control characters escaped)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _snapshot(event: Mapping[str, Any]) -> dict[str, Any]:
    aggregate = str(event.get("type", "tandem.x.y")).split(".")[1]
    data = event.get("data") or {}
    snapshot = data.get(aggregate)
    return snapshot if isinstance(snapshot, dict) else {}


def _what(aggregate: str, verb: str, snapshot: Mapping[str, Any],
          data: Mapping[str, Any]) -> str:
    """The verb phrase: ``opened``, ``moved to resolved``, ``gate prevented``, ..."""
    if verb == "created":
        return {"incident": "opened", "deployment": "started", "freeze": "declared"}.get(
            aggregate, "created")
    if verb == "transitioned":
        to = data.get("to") or snapshot.get("status")
        return f"moved from {data.get('from')} to {to}" if data.get("from") else f"is now {to}"
    if verb == "updated":
        changed = ", ".join(sorted((data.get("changes") or {}).keys()))
        return f"updated ({changed})" if changed else "updated"
    if verb == "approval_recorded":
        approval = data.get("approval") if isinstance(data.get("approval"), dict) else data
        decision = data.get("decision") or approval.get("decision")
        return {"approve": "approved", "reject": "rejected"}.get(str(decision), "decided")
    if verb == "gate_decided":
        gate = data.get("gate") or snapshot.get("gate") or {}
        return f"gate {gate.get('decision', 'decided')}"
    return {"annotated": "got a note", "sla_breached": "breached its SLA",
            "suspects_found": "has suspects", "cause_confirmed": "has its cause confirmed",
            "factor_added": "got a contributing factor", "action_added": "got an action item",
            "action_closed": "closed an action item", "due_breached": "is past its due date",
            }.get(
        verb, verb.replace("_", " "))


def _emoji(aggregate: str, snapshot: Mapping[str, Any], verb: str) -> str:
    status = snapshot.get("status")
    if aggregate == "incident":
        if status in ("resolved", "closed"):
            return ":white_check_mark:"
        return ":red_circle:" if (snapshot.get("priority") or 5) <= 2 else ":large_orange_circle:"
    if aggregate == "deployment":
        if status in ("failed", "rolled_back"):
            return ":x:"
        return ":white_check_mark:" if status == "succeeded" else ":rocket:"
    if aggregate == "freeze":
        return ":snowflake:"
    if aggregate == "review" and verb == "due_breached":
        return ":warning:"
    return ":large_blue_circle:"


def _label(aggregate: str, snapshot: Mapping[str, Any]) -> str:
    number = snapshot.get("number") or snapshot.get("name") or ""
    if aggregate == "incident":
        priority = snapshot.get("priority")
        major = " major" if snapshot.get("major") else ""
        return f"P{priority}{major} incident {number}" if priority else f"Incident {number}"
    if aggregate == "change":
        kind = snapshot.get("type")
        return f"{kind.capitalize()} change {number}" if kind else f"Change {number}"
    if aggregate == "deployment":
        version = snapshot.get("software_version")
        return f"Deployment {number}" + (f" of {version}" if version else "")
    if aggregate == "review":
        return f"Post-incident review {number} of {snapshot.get('incident_number') or '?'}"
    return f"{_NOUNS.get(aggregate, aggregate).capitalize()} {number}"


def _services(aggregate: str, snapshot: Mapping[str, Any]) -> str | None:
    if aggregate == "freeze":
        listed = snapshot.get("services") or []
        return ", ".join(map(str, listed)) if listed else "every service"
    if aggregate == "service":
        return str(snapshot.get("name")) if snapshot.get("name") else None
    service = snapshot.get("service")
    return str(service) if service else None


def slack_message(event: Mapping[str, Any], link: str | None) -> dict[str, Any]:
    """The incoming-webhook message for ``event`` (a CloudEvent as JSON), linking ``link``."""
    type_ = str(event.get("type", ""))
    _, aggregate, verb = ([*type_.split("."), "", ""])[:3]
    data = event.get("data") or {}
    snapshot = _snapshot(event)
    label = _label(aggregate, snapshot)
    service = _services(aggregate, snapshot)
    title = (snapshot.get("title") or snapshot.get("reason") or snapshot.get("description")
             or snapshot.get("incident_title"))
    actor = event.get("actor") or "someone"
    headline = f"{label} {_what(aggregate, verb, snapshot, data)}"
    if service and aggregate != "service":
        headline += f" on {service}"
    headline_text = escape(headline) + (f": {escape(title)}" if title else "")
    text = f"{_emoji(aggregate, snapshot, verb)} {headline_text} (by {escape(actor)})"
    facts = []
    if service:
        facts.append(("Service", service))
    if snapshot.get("environment"):
        facts.append(("Environment", snapshot["environment"]))
    if aggregate == "incident" and snapshot.get("priority"):
        facts.append(("Priority", f"P{snapshot['priority']}"))
    if snapshot.get("status"):
        facts.append(("Status", snapshot["status"]))
    facts.append(("By", actor))
    heading = f"*{escape(headline)}*"
    if link:
        heading = f"*<{escape(link)}|{escape(headline)}>*"
    section_text = heading + (f"\n{escape(title)}" if title else "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section_text}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{escape(value)}"}
                                       for name, value in facts]},
    ]
    context = [f"`{escape(type_)}`"]
    if link:
        context.append(f"<{escape(link)}|Open in Tandem>")
    blocks.append({"type": "context",
                   "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    if link:
        text += f" <{escape(link)}|{escape(snapshot.get('number') or 'open')}>"
    return {"text": text, "blocks": blocks}


def resource_link(template: str, *, source: str, aggregate: str, subject: str,
                  ports: Mapping[str, int]) -> str | None:
    """The resource's address by ``template`` (``{service}``, ``{port}``, ``{plural}``,
    ``{id}``), or None when the event's service or aggregate is unknown."""
    service = source.rsplit("/", 1)[-1]
    plural = PLURALS.get(aggregate)
    if plural is None or service not in ports:
        return None
    try:
        return template.format(service=service, port=ports[service], plural=plural, id=subject)
    except (KeyError, IndexError, ValueError):
        return None
