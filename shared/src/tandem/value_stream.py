"""The value stream, once: pure functions over plain records of deliveries and failures.

A **delivery** is one production deployment that went live, with the moments of its stream:
its earliest commit, the change it carried requested, that change authorized, the deploy
started, the deploy done. A **failure** is one incident: opened, acknowledged (else when it
first left ``new``), mitigated (else when resolved), resolved, its review done. Each pair of
consecutive moments is a stage; every stage is held by one of the service's two teams (its
owner team, the developers, or its operations team, application management) and its time is
split into **wait** (nobody's move: the item sits in a queue state) and **work** (the rest):

=========== =================================== =========== ==================================
stage       from -> to                          held by     waiting while
=========== =================================== =========== ==================================
commit      commit -> change requested          owner       always (the commit waits to ship)
approval    change requested -> authorized      owner       the change is in assess, authorize
scheduled   change authorized -> deploy started owner       the change is scheduled
deploy      deploy started -> deployed          owner       never (the pipeline is deploying)
response    incident opened -> acknowledged     operations  always (nobody has taken it yet)
mitigation  acknowledged -> mitigated           operations  the incident is on hold
resolution  mitigated -> resolved               owner       the incident is on hold
review      resolved -> review done             operations  the review is open (untouched)
=========== =================================== =========== ==================================

Per stage the report gives the p50 and p90 of its time (linear interpolation between closest
ranks), the wait and the work summed over every item, and the team holding it; over the whole,
the flow efficiency (work / (work + wait)) and the costliest stage: the one with the most time
summed over every item (the first in stream order on a tie). The dashboard's value stream map
and the incidents service's post-incident reviews both call this module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

Holder = Literal["owner", "operations"]


@dataclass(frozen=True)
class StateSpan:
    """A status an aggregate entered at ``since`` (held until the next span's ``since``)."""

    state: str
    since: datetime


@dataclass(frozen=True)
class DeliveryRecord:
    """One production deployment that went live, and the moments before it."""

    id: str
    service: str
    committed_at: datetime | None = None
    change_requested_at: datetime | None = None
    change_authorized_at: datetime | None = None
    deploy_started_at: datetime | None = None
    deployed_at: datetime | None = None
    #: The carried change's statuses, oldest first.
    change_history: tuple[StateSpan, ...] = ()


@dataclass(frozen=True)
class FailureRecord:
    """One incident and the moments of its recovery and review."""

    id: str
    service: str
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    review_done_at: datetime | None = None
    incident_history: tuple[StateSpan, ...] = ()
    review_history: tuple[StateSpan, ...] = ()


@dataclass(frozen=True)
class Stage:
    name: str
    label: str
    kind: Literal["delivery", "failure"]
    start: str
    end: str
    holder: Holder
    #: ``always``/``never`` waiting, or ``states``: while ``history`` is in ``waiting``.
    wait_rule: Literal["always", "never", "states"] = "always"
    history: str = ""
    waiting: frozenset[str] = field(default_factory=frozenset)


STAGES: tuple[Stage, ...] = (
    Stage("commit", "commit → change requested", "delivery", "committed_at",
          "change_requested_at", "owner"),
    Stage("approval", "change requested → change authorized", "delivery",
          "change_requested_at", "change_authorized_at", "owner", "states",
          "change_history", frozenset({"assess", "authorize"})),
    Stage("scheduled", "change authorized → deploy started", "delivery",
          "change_authorized_at", "deploy_started_at", "owner", "states", "change_history",
          frozenset({"scheduled"})),
    Stage("deploy", "deploy started → deployed", "delivery", "deploy_started_at",
          "deployed_at", "owner", "never"),
    Stage("response", "incident opened → acknowledged", "failure", "opened_at",
          "acknowledged_at", "operations"),
    Stage("mitigation", "acknowledged → mitigated", "failure", "acknowledged_at",
          "mitigated_at", "operations", "states", "incident_history", frozenset({"on_hold"})),
    Stage("resolution", "mitigated → resolved", "failure", "mitigated_at", "resolved_at",
          "owner", "states", "incident_history", frozenset({"on_hold"})),
    Stage("review", "resolved → review done", "failure", "resolved_at", "review_done_at",
          "operations", "states", "review_history", frozenset({"open"})),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


@dataclass(frozen=True)
class StageTime:
    """One item's time in one stage, split into wait and work (seconds)."""

    stage: str
    item: str
    service: str
    start: datetime
    end: datetime
    wait_s: float
    work_s: float

    @property
    def total_s(self) -> float:
        return self.wait_s + self.work_s


@dataclass(frozen=True)
class StageFigures:
    name: str
    label: str
    kind: str
    holder: Holder
    teams: tuple[str, ...]
    count: int
    p50_s: float | None
    p90_s: float | None
    wait_s: float
    work_s: float

    @property
    def total_s(self) -> float:
        return self.wait_s + self.work_s


@dataclass(frozen=True)
class ValueStream:
    stages: tuple[StageFigures, ...]
    flow_efficiency: float | None
    costliest_stage: str | None
    deliveries: int
    failures: int
    wait_s: float
    work_s: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def waiting_seconds(history: Sequence[StateSpan], waiting: frozenset[str], start: datetime,
                    end: datetime) -> float:
    """Seconds of ``[start, end]`` the history spent in a ``waiting`` state."""
    spans = sorted(history, key=lambda s: s.since)
    total = 0.0
    for i, span in enumerate(spans):
        if span.state not in waiting:
            continue
        until = spans[i + 1].since if i + 1 < len(spans) else end
        low, high = max(span.since, start), min(until, end)
        if high > low:
            total += (high - low).total_seconds()
    return total


def _effective(record: FailureRecord) -> FailureRecord:
    """A failure's missing moments, as its history has them: acknowledged when it first left
    ``new`` (resolved straight from new: when resolved), mitigated when resolved."""
    acknowledged = record.acknowledged_at
    if acknowledged is None:
        acknowledged = next((s.since for s in sorted(record.incident_history,
                                                     key=lambda s: s.since)
                             if s.state not in ("new", "canceled")), None)
    return replace(record, acknowledged_at=acknowledged,
                   mitigated_at=record.mitigated_at or record.resolved_at)


def stage_times(record: DeliveryRecord | FailureRecord) -> list[StageTime]:
    """The stages ``record`` went through (both ends known, in order), with wait and work."""
    kind = "delivery" if isinstance(record, DeliveryRecord) else "failure"
    if isinstance(record, FailureRecord):
        record = _effective(record)
    out = []
    for stage in STAGES:
        if stage.kind != kind:
            continue
        start, end = getattr(record, stage.start), getattr(record, stage.end)
        if start is None or end is None or end < start:
            continue
        total = (end - start).total_seconds()
        if stage.wait_rule == "always":
            wait = total
        elif stage.wait_rule == "never":
            wait = 0.0
        else:
            wait = min(total, waiting_seconds(getattr(record, stage.history), stage.waiting,
                                              start, end))
        out.append(StageTime(stage.name, record.id, record.service, start, end, wait,
                             total - wait))
    return out


def _in_window(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment <= end


def value_stream(deliveries: Iterable[DeliveryRecord], failures: Iterable[FailureRecord], *,
                 start: datetime, end: datetime,
                 teams: Mapping[str, tuple[str | None, str | None]]) -> ValueStream:
    """The value stream of the deliveries deployed and the failures opened in
    ``[start, end]``; ``teams`` maps a service to its (owner team, operations team)."""
    chosen_d = [d for d in deliveries if _in_window(d.deployed_at, start, end)]
    chosen_f = [f for f in failures if _in_window(f.opened_at, start, end)]
    times: dict[str, list[StageTime]] = {name: [] for name in STAGE_NAMES}
    for record in [*chosen_d, *chosen_f]:
        for st in stage_times(record):
            times[st.stage].append(st)
    figures = []
    for stage in STAGES:
        samples = times[stage.name]
        totals = [s.total_s for s in samples]
        index = 0 if stage.holder == "owner" else 1
        held_by = sorted({t for s in samples
                          if (t := teams.get(s.service, (None, None))[index])})
        figures.append(StageFigures(
            name=stage.name, label=stage.label, kind=stage.kind, holder=stage.holder,
            teams=tuple(held_by), count=len(samples),
            p50_s=round(percentile(totals, 0.5), 3) if totals else None,
            p90_s=round(percentile(totals, 0.9), 3) if totals else None,
            wait_s=round(math.fsum(s.wait_s for s in samples), 3),
            work_s=round(math.fsum(s.work_s for s in samples), 3)))
    wait = math.fsum(f.wait_s for f in figures)
    work = math.fsum(f.work_s for f in figures)
    costliest = max((f for f in figures if f.count), key=lambda f: f.total_s, default=None)
    return ValueStream(
        stages=tuple(figures),
        flow_efficiency=round(work / (wait + work), 4) if wait + work > 0 else None,
        costliest_stage=costliest.name if costliest is not None and costliest.total_s > 0
        else None,
        deliveries=len(chosen_d), failures=len(chosen_f),
        wait_s=round(wait, 3), work_s=round(work, 3))
