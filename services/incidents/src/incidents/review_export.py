"""A post-incident review as Markdown: what the team pastes where it keeps its learning."""

from __future__ import annotations

from datetime import datetime

from incidents.schemas import ReviewPublic


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%MZ")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def as_markdown(review: ReviewPublic) -> str:
    lines = [
        f"# Post-incident review {review.number}: {review.incident_title}",
        "",
        f"- Incident: {review.incident_number} (P{review.priority}, {review.service})",
        f"- Owned by: {review.owner_team or '(no operations team in the catalog)'}; "
        f"with: {review.participant_team or '(no owner team in the catalog)'}",
        f"- Status: {review.status.replace('_', ' ')}; due {_when(review.due_at)}"
        + (f"; completed {_when(review.completed_at)}"
           f" ({'on time' if review.completed_on_time else 'late'})"
           if review.completed_at else "")
        + ("; past its due date" if review.breached_at and not review.completed_at else ""),
        "",
        "## Cause",
        "",
    ]
    cause = review.cause
    dep, chg = cause.get("deployment"), cause.get("change")
    parts = []
    if dep:
        parts.append(f"deployment {dep.get('number') or dep.get('id')}"
                     + (f" (version {dep['version']})" if dep.get("version") else ""))
    if chg:
        parts.append(f"change {chg.get('number') or chg.get('id')}"
                     + (f" ({chg['title']})" if chg.get("title") else ""))
    lines.append(f"{cause.get('status', 'unknown').capitalize()}: "
                 f"{', '.join(parts) if parts else 'none named'}.")
    lines += ["", "## Timeline", "", "| time | what | ref | |", "|---|---|---|---|"]
    for entry in review.timeline:
        lines.append(f"| {_when(entry.time)} | {entry.kind} | {_cell(entry.ref)} | "
                     f"{_cell(entry.text)} |")
    lines += ["", "## Value stream of the failure", "",
              "| stage | held by | wait | work |", "|---|---|---|---|"]
    for stage in review.stream:
        lines.append(f"| {stage.label} | {stage.holder}: {stage.team or '-'} | "
                     f"{_duration(stage.wait_s)} | {_duration(stage.work_s)} |")
    lines += ["", "## Contributing factors", ""]
    lines += [f"- {_cell(f.text)} ({f.added_by}, {_when(f.added_at)})" for f in review.factors]
    if not review.factors:
        lines.append("None written down yet.")
    lines += ["", "## Action items", "", "| # | action | team | change | status |",
              "|---|---|---|---|---|"]
    for a in review.actions:
        status = a.status
        if a.closed_by_deployment_number:
            status += f" by deployment {a.closed_by_deployment_number} ({_when(a.closed_at)})"
        elif a.closed_at:
            status += f" by {a.closed_by} ({_when(a.closed_at)})"
        lines.append(f"| {a.number} | {_cell(a.title)} | {a.team or '-'} | "
                     f"{a.change_number or '-'} | {status} |")
    return "\n".join(lines) + "\n"
