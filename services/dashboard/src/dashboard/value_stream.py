"""The value stream map: the board's snapshots made into the records :mod:`tandem.value_stream`
takes, for a service, a team's services or a system's, and the map drawn as SVG.

A delivery is a production deployment that went live (succeeded, or rolled back later): its
earliest commit, the change it carried (the one it named, else the gate's) requested (created)
and authorized (first reached ``scheduled``), the deploy started and finished. A failure is a
production incident: reported, acknowledged, mitigated (else resolved: no separate mitigation),
resolved, and its review completed (missing moments as :mod:`tandem.value_stream` fills them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

from dashboard.board import Board, parse_time
from tandem import dora
from tandem.errors import Invalid, NotFound
from tandem.value_stream import (
    DeliveryRecord,
    FailureRecord,
    StageFigures,
    ValueStream,
    value_stream,
)

PRODUCTION = "production"


@dataclass(frozen=True)
class Scope:
    """What the stream is of: one of ``service``, ``team``, ``system``, and its name."""

    kind: str
    name: str


def parse_scope(service: str | None, team: str | None, system: str | None) -> Scope:
    given = [(k, v) for k, v in (("service", service), ("team", team), ("system", system))
             if v is not None]
    if len(given) != 1:
        field = given[1][0] if len(given) > 1 else "service"
        raise Invalid(field, "give exactly one of service, team or system")
    kind, name = given[0]
    if not name.strip() or len(name) > 100:
        raise Invalid(kind, "must be a name of 1 to 100 characters")
    return Scope(kind, name.strip())


def parse_span(window: str) -> timedelta:
    try:
        return dora.parse_window(window)
    except ValueError as exc:
        raise Invalid("window", str(exc)) from None


def services_in(board: Board, scope: Scope) -> list[str]:
    """The service names of ``scope``; a team or system the catalog does not know: 404."""
    if scope.kind == "service":
        return [scope.name]
    catalog = board.aggregates["service"].values()
    if scope.kind == "team":
        known = {t.get("name") for t in board.aggregates["team"].values()}
        names = sorted(str(s.get("name")) for s in catalog
                       if scope.name in (s.get("owner_team"), s.get("operations_team")))
    else:
        known = {s.get("system") for s in catalog}
        names = sorted(str(s.get("name")) for s in catalog if s.get("system") == scope.name)
    if not names and scope.name not in known:
        raise NotFound(scope.kind, scope.name)
    return names


def _first_reached(board: Board, aggregate: str, subject: str,
                   states: frozenset[str]) -> datetime | None:
    for span in board.histories.get((aggregate, subject), ()):
        if span.state in states:
            return span.since
    return None


AUTHORIZED = frozenset({"scheduled", "implement", "review", "closed"})


def deliveries(board: Board, services: set[str]) -> list[DeliveryRecord]:
    out = []
    changes = board.aggregates["change"]
    for subject, dep in board.aggregates["deployment"].items():
        if dep.get("service") not in services or dep.get("environment") != PRODUCTION:
            continue
        if dep.get("status") not in dora.DEPLOYED_OUTCOMES:
            continue
        commits = dep.get("commits") if isinstance(dep.get("commits"), list) else []
        committed = [t for c in commits if isinstance(c, dict)
                     if (t := parse_time(c.get("committed_at"))) is not None]
        gate = dep.get("gate") if isinstance(dep.get("gate"), dict) else {}
        change_id = str(dep.get("change_id") or gate.get("change_id") or "")
        change = changes.get(change_id)
        out.append(DeliveryRecord(
            id=subject, service=str(dep["service"]),
            committed_at=min(committed) if committed else None,
            change_requested_at=parse_time(change.get("created_at")) if change else None,
            change_authorized_at=(_first_reached(board, "change", change_id, AUTHORIZED)
                                  if change else None),
            deploy_started_at=parse_time(dep.get("started_at")),
            deployed_at=parse_time(dep.get("finished_at")),
            change_history=tuple(board.histories.get(("change", change_id), ()))))
    return out


def failures(board: Board, services: set[str]) -> list[FailureRecord]:
    reviews = {str(r.get("incident_id")): (subject, r)
               for subject, r in board.aggregates["review"].items()}
    out = []
    for subject, inc in board.aggregates["incident"].items():
        if inc.get("service") not in services or inc.get("environment") != PRODUCTION:
            continue
        resolved = parse_time(inc.get("resolved_at"))
        review_subject, review = reviews.get(subject, ("", {}))
        out.append(FailureRecord(
            id=subject, service=str(inc["service"]),
            opened_at=parse_time(inc.get("reported_at")) or parse_time(inc.get("created_at")),
            acknowledged_at=parse_time(inc.get("acknowledged_at")),
            mitigated_at=parse_time(inc.get("mitigated_at")),
            resolved_at=resolved,
            review_done_at=parse_time(review.get("completed_at")),
            incident_history=tuple(board.histories.get(("incident", subject), ())),
            review_history=tuple(board.histories.get(("review", review_subject), ()))))
    return out


def compute(board: Board, scope: Scope, span: timedelta, now: datetime) -> tuple[
        list[str], ValueStream]:
    names = services_in(board, scope)
    wanted = set(names)
    catalog = board.services_by_name()
    teams = {name: (catalog.get(name, {}).get("owner_team"),
                    catalog.get(name, {}).get("operations_team")) for name in names}
    stream = value_stream(deliveries(board, wanted), failures(board, wanted),
                          start=now - span, end=now, teams=teams)
    return names, stream


def _stage_json(stage: StageFigures) -> dict[str, Any]:
    return {"name": stage.name, "label": stage.label, "kind": stage.kind,
            "holder": stage.holder, "teams": list(stage.teams), "count": stage.count,
            "p50_s": stage.p50_s, "p90_s": stage.p90_s, "wait_s": stage.wait_s,
            "work_s": stage.work_s, "total_s": round(stage.total_s, 3),
            "wait_share": round(stage.wait_s / stage.total_s, 4) if stage.total_s else None}


def as_json(scope: Scope, window: str, names: list[str], stream: ValueStream,
            now: datetime, span: timedelta) -> dict[str, Any]:
    return {
        "scope": {"kind": scope.kind, "name": scope.name}, "services": names,
        "window": window, "start": (now - span).isoformat().replace("+00:00", "Z"),
        "end": now.isoformat().replace("+00:00", "Z"),
        "deliveries": stream.deliveries, "failures": stream.failures,
        "wait_s": stream.wait_s, "work_s": stream.work_s,
        "flow_efficiency": stream.flow_efficiency, "costliest_stage": stream.costliest_stage,
        "stages": [_stage_json(s) for s in stream.stages],
    }


def human(seconds: float | None) -> str:
    """``42s``, ``17m``, ``3.5h``, ``2.1d``; an en dash with no sample."""
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


BOX_W, BOX_H, GAP, MARGIN, ROW_H = 250, 116, 40, 24, 256


def as_svg(scope: Scope, window: str, stream: ValueStream) -> str:
    """The map: one row of stage boxes per kind (delivery, failure), each with its p50 and
    p90, who holds it and its work; under each row the lead-time ladder, waits on the upper
    step, work on the lower, per item on average. Presentation attributes only (the page's
    Content-Security-Policy allows no inline styles)."""
    width = MARGIN * 2 + 4 * BOX_W + 3 * GAP
    height = 76 + 2 * ROW_H
    e = escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
        f'role="img" aria-label="Value stream map of {e(scope.kind)} {e(scope.name)}">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{MARGIN}" y="30" font-size="20" font-weight="bold" fill="#1b2733">'
        f'Value stream of {e(scope.kind)} {e(scope.name)} (last {e(window)})</text>',
        f'<text x="{MARGIN}" y="54" font-size="14" fill="#3d4b59">'
        f'{_count(stream.deliveries, "delivery", "deliveries")}, '
        f'{_count(stream.failures, "failure", "failures")} · flow efficiency '
        f'{_percent(stream.flow_efficiency)} · costliest stage: '
        f'{e(_label_of(stream, stream.costliest_stage))}</text>',
    ]
    for row, kind in enumerate(("delivery", "failure")):
        top = 76 + row * ROW_H
        stages = [s for s in stream.stages if s.kind == kind]
        parts.append(f'<text x="{MARGIN}" y="{top + 14}" font-size="13" font-weight="bold" '
                     f'fill="#3d4b59">{"Delivery" if kind == "delivery" else "Failure"}'
                     f'</text>')
        ladder_y = top + 24 + BOX_H + 40
        for i, stage in enumerate(stages):
            x = MARGIN + i * (BOX_W + GAP)
            y = top + 24
            costly = stage.name == stream.costliest_stage
            parts.append(
                f'<rect class="stage" data-stage="{e(stage.name)}" x="{x}" y="{y}" '
                f'width="{BOX_W}" height="{BOX_H}" rx="6" '
                f'fill="{"#fde2e1" if costly else "#eef3f8"}" '
                f'stroke="{"#c0392b" if costly else "#5b7083"}" '
                f'stroke-width="{3 if costly else 1.5}"/>')
            if i < len(stages) - 1:
                ax = x + BOX_W
                parts.append(f'<path d="M{ax + 4} {y + BOX_H / 2} h{GAP - 12} l-6 -5 v10 l6 -5" '
                             f'fill="#5b7083" stroke="#5b7083"/>')
            teams = ", ".join(stage.teams) or "no team in the catalog"
            work_each = human(_mean(stage.work_s, stage))
            origin, _, target = stage.label.partition(" → ")
            lines = [(13, "bold", f"{origin} →"), (13, "bold", target),
                     (12, "normal", f"p50 {human(stage.p50_s)} · p90 {human(stage.p90_s)}"),
                     (12, "normal", f"{_count(stage.count, 'item', 'items')} · work {work_each}"),
                     (11, "normal", f"{stage.holder}: {teams}")]
            for n, (size, weight, text) in enumerate(lines):
                parts.append(f'<text x="{x + 10}" y="{y + 20 + n * 20}" font-size="{size}" '
                             f'font-weight="{weight}" fill="#1b2733">{e(_fit(text, 34))}</text>')
            # The ladder: wait on the upper step, work on the lower one.
            wait, work = _mean(stage.wait_s, stage), _mean(stage.work_s, stage)
            parts.append(
                f'<path d="M{x} {ladder_y} H{x + BOX_W * 0.55} V{ladder_y + 30} H{x + BOX_W}" '
                f'fill="none" stroke="#1b2733" stroke-width="2"/>')
            parts.append(f'<text class="wait" x="{x + 4}" y="{ladder_y - 6}" font-size="12" '
                         f'fill="#a0522d">wait {human(wait)}</text>')
            parts.append(f'<text class="work" x="{x + BOX_W * 0.55 + 4}" y="{ladder_y + 46}" '
                         f'font-size="12" fill="#1e6b3a">work {human(work)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _mean(total: float, stage: StageFigures) -> float | None:
    return total / stage.count if stage.count else None


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _label_of(stream: ValueStream, name: str | None) -> str:
    for stage in stream.stages:
        if stage.name == name:
            return stage.label
    return "none yet"


def _fit(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
