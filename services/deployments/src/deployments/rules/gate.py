"""S1, the production gate: a pure decision over the service's projections of other services.

Order of the rules (contract section 6):

1. a non-production deployment is allowed and recorded;
2. an active freeze covering the service prevents it, unless the deployment carries an
   emergency change linked to an open incident of the service, or it recovers from the failed
   deployment that caused the freeze's incident (a rollback or a fix forward,
   :mod:`deployments.rules.recovery`): then it is allowed in every mode and an emergency change
   linked to that incident is recorded for it (``request_change = "emergency"``);
3. a change named by ``change_id`` of that service, in ``scheduled`` or ``implement``, whose
   window covers now, allows it; a standard change does only when it was recorded from a
   standard change template (pre-authorized), never when it is outside one (anyone, a
   pipeline included, could otherwise authorize their own deploy);
4. otherwise the policy ``TANDEM_GATE_MODE`` decides: ``receipt`` records a standard change and
   allows unless the service has an open major incident; ``approval`` asks for a normal change
   and awaits it (allowed once authorized, prevented if rejected or canceled); ``off`` allows.

Everything here is plain data in, plain data out: :mod:`deployments.gate_decisions` loads the
projections, stores and publishes the decision, and decides again when a change moves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class GateMode(StrEnum):
    receipt = "receipt"
    approval = "approval"
    off = "off"


class Decision(StrEnum):
    allowed = "allowed"
    prevented = "prevented"
    awaiting = "awaiting"


OPEN_INCIDENT_STATUSES = frozenset({"new", "acknowledged", "in_progress", "on_hold"})
#: A change in these states is authorized and may be implemented.
AUTHORIZED_CHANGE_STATUSES = frozenset({"scheduled", "implement"})
#: A change in these states is still on its way to authorization.
PENDING_CHANGE_STATUSES = frozenset({"new", "assess", "authorize"})


@dataclass(frozen=True)
class ChangeFacts:
    """What the gate knows of a change, from ``tandem.changes``."""

    id: uuid.UUID
    number: str
    type: str
    service: str
    status: str
    planned_start: datetime | None = None
    planned_end: datetime | None = None
    incident_id: uuid.UUID | None = None
    #: Sent back to ``new`` from assess/authorize: the changes service's rejection.
    rejected: bool = False
    #: The deployment that asked for the change (the changes service's ``deployment_id``).
    deployment_id: uuid.UUID | None = None
    #: The standard change template the change was recorded from, if any.
    template_id: uuid.UUID | None = None


@dataclass(frozen=True)
class FreezeFacts:
    """A freeze window, from ``tandem.changes``; no services means every service."""

    id: uuid.UUID
    number: str
    services: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime | None
    status: str
    source: str = "manual"
    incident_id: uuid.UUID | None = None
    #: The environments frozen; empty for every environment.
    environments: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentFacts:
    """An incident, from ``tandem.incidents``."""

    id: uuid.UUID
    number: str
    service: str
    priority: int
    major: bool
    status: str
    #: The deployment the incident names its cause (S2 declares it for a failed deploy).
    cause_deployment_id: uuid.UUID | None = None


@dataclass(frozen=True)
class GateInput:
    """Everything one gate decision depends on."""

    service: str
    environment: str
    mode: GateMode
    now: datetime
    #: Freezes not ended; the gate checks which cover the service now.
    freezes: tuple[FreezeFacts, ...] = ()
    #: Open production incidents of the service.
    open_incidents: tuple[IncidentFacts, ...] = ()
    #: The ``change_id`` the pipeline sent, if any.
    named_change_id: uuid.UUID | None = None
    #: The named change, or else the change the changes service created for this deployment.
    change: ChangeFacts | None = None
    #: A change was already asked for by an earlier decision (do not ask twice).
    change_requested: bool = False
    #: ``rollback`` or ``fix_forward`` when the deployment recovers from a failure.
    recovery: str | None = None
    #: The open incidents caused by a deployment that it recovers from (their freezes spare it).
    recovers: tuple[IncidentFacts, ...] = ()


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    reasons: tuple[Reason, ...]
    mode: GateMode
    #: The change the decision rests on (named, or created for this deployment).
    change_id: uuid.UUID | None = None
    #: ``standard``, ``normal`` or ``emergency`` when the changes service should create a
    #: change now (an emergency one is linked to the first incident the deployment recovers).
    request_change: str | None = None


def change_rejected(status: str, *, before: str | None, was_rejected: bool,
                    rejection_recorded: bool) -> bool:
    """Whether a change now in ``status`` stands rejected: the changes service answers a
    rejection by sending the change back to ``new``, so ``new`` after assess or authorize (or
    right after a recorded rejection) is one, and it stays one while the change stays new."""
    return status == "new" and (before in ("assess", "authorize") or rejection_recorded
                                or (was_rejected and before == "new"))


def freeze_covers(freeze: FreezeFacts, service: str, now: datetime,
                  environment: str = "production") -> bool:
    """True when ``freeze`` stops ``service`` in ``environment`` at ``now`` (no services
    listed: all services; no environments listed: all environments)."""
    if freeze.status == "ended":
        return False
    if freeze.services and service not in freeze.services:
        return False
    if freeze.environments and environment not in freeze.environments:
        return False
    return freeze.starts_at <= now and (freeze.ends_at is None or now < freeze.ends_at)


def change_window_covers(change: ChangeFacts, now: datetime) -> bool:
    """True when the change's planned window contains ``now`` (an open end never closes)."""
    if change.planned_start is not None and now < change.planned_start:
        return False
    return change.planned_end is None or now <= change.planned_end


def _emergency_fix(gate: GateInput) -> IncidentFacts | None:
    """The open incident the carried emergency change fixes, if it is one."""
    change = gate.change
    if (change is None or change.id != gate.named_change_id or change.type != "emergency"
            or change.service != gate.service or change.status in ("canceled", "closed")):
        return None
    return next((i for i in gate.open_incidents if i.id == change.incident_id), None)


def _named_change_reason(gate: GateInput) -> tuple[bool, Reason]:
    """Whether the named change covers the deployment now, and the reason saying so."""
    change = gate.change
    if change is None or change.id != gate.named_change_id:
        return False, Reason("change_unknown", f"Change {gate.named_change_id} is not known to "
                             "the deployments service yet.")
    if change.service != gate.service:
        return False, Reason("change_other_service", f"Change {change.number} is for service "
                             f"{change.service}, not {gate.service}.")
    if change.status not in AUTHORIZED_CHANGE_STATUSES:
        return False, Reason("change_not_authorized", f"Change {change.number} is {change.status}"
                             ", not scheduled or implement.")
    if change.type == "standard" and change.template_id is None:
        return False, Reason("change_outside_template", f"Standard change {change.number} was "
                             "not recorded from a standard change template, so it authorizes "
                             "no deployment.")
    if not change_window_covers(change, gate.now):
        return False, Reason("change_outside_window", f"Change {change.number} is planned for "
                             f"{_when(change.planned_start)} to {_when(change.planned_end)}, "
                             "which does not cover now.")
    return True, Reason("change_covers", f"Change {change.number} is {change.status} and its "
                        "window covers now.")


def _when(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else "open"


def _frozen_reason(gate: GateInput, freeze: FreezeFacts) -> Reason:
    """Why a freeze stops the deployment, and until when."""
    if freeze.source == "incident":
        incident = next((i.number for i in gate.open_incidents if i.id == freeze.incident_id),
                        str(freeze.incident_id))
        return Reason("freeze_active", f"Freeze {freeze.number} covers {gate.service} while "
                      f"incident {incident} is open; only an emergency change linked to it "
                      "goes through.")
    until = freeze.ends_at.isoformat() if freeze.ends_at is not None else "it is ended"
    return Reason("freeze_active", f"Freeze {freeze.number} covers {gate.service} until "
                  f"{until}.")


def _approval(gate: GateInput, reasons: list[Reason]) -> GateDecision:
    """Approval mode: the named or requested change decides."""
    mode, change = gate.mode, gate.change
    if change is None:
        if gate.named_change_id is not None:
            return GateDecision(Decision.awaiting, tuple(reasons), mode, gate.named_change_id)
        reasons.append(Reason("change_requested", "A normal change was requested from the "
                              "changes service; the deployment waits for its authorization."))
        return GateDecision(Decision.awaiting, tuple(reasons), mode, None,
                            None if gate.change_requested else "normal")
    named = change.id == gate.named_change_id
    if named and change.service != gate.service:
        return GateDecision(Decision.prevented, tuple(reasons), mode, change.id)
    if change.status == "canceled":
        reasons.append(Reason("change_canceled", f"Change {change.number} was canceled."))
        return GateDecision(Decision.prevented, tuple(reasons), mode, change.id)
    if change.rejected and change.status == "new":
        reasons.append(Reason("change_rejected", f"Change {change.number} was rejected."))
        return GateDecision(Decision.prevented, tuple(reasons), mode, change.id)
    if change.status in PENDING_CHANGE_STATUSES:
        if not named:  # a named change's state is already among the reasons
            # No state in the message: its moves towards authorization are not new decisions.
            reasons.append(Reason("change_pending", f"Change {change.number} was requested for "
                                  "this deployment; it waits for the change's authorization."))
        return GateDecision(Decision.awaiting, tuple(reasons), mode, change.id)
    if change.status in AUTHORIZED_CHANGE_STATUSES and not named:
        # The change made for this deployment carries its window; authorization is what counts.
        reasons.append(Reason("change_authorized", f"Change {change.number} is authorized "
                              f"({change.status})."))
        return GateDecision(Decision.allowed, tuple(reasons), mode, change.id)
    if not named:
        reasons.append(Reason("change_closed", f"Change {change.number} is {change.status}; "
                              "it can no longer authorize a deployment."))
    return GateDecision(Decision.prevented, tuple(reasons), mode, change.id)


def decide_gate(gate: GateInput) -> GateDecision:
    """The gate's decision for one deployment, with a reason per rule that spoke."""
    mode = gate.mode
    if gate.environment != "production":
        return GateDecision(Decision.allowed, (Reason(
            "non_production", f"Deployments to {gate.environment} are allowed and recorded."),),
            mode, gate.named_change_id)
    reasons: list[Reason] = []
    fixes = _emergency_fix(gate)
    recovered = {i.id for i in gate.recovers}
    covering = [f for f in gate.freezes
                if freeze_covers(f, gate.service, gate.now, gate.environment)]
    freezes = [f for f in covering
               if not (f.source == "incident" and f.incident_id in recovered)]
    if freezes:
        if fixes is None:
            return GateDecision(Decision.prevented, (_frozen_reason(gate, freezes[0]),), mode,
                                gate.named_change_id)
        assert gate.change is not None
        reasons.append(Reason("emergency_change", f"Emergency change {gate.change.number} fixes "
                              f"open incident {fixes.number}; the freeze does not stop it."))
    if gate.recovers:
        numbers = ", ".join(i.number for i in gate.recovers)
        what = "rolls back to the last version that succeeded" if gate.recovery == "rollback" \
            else "fixes forward"
        reasons.append(Reason("recovery", f"The deployment {what} after the failed deployment "
                              f"that caused {numbers}; "
                              + ("the freeze of that incident does not stop it."
                                 if len(covering) > len(freezes) else "it is a recovery.")))
    if gate.named_change_id is not None:
        covers, reason = _named_change_reason(gate)
        reasons.append(reason)
        if covers:
            return GateDecision(Decision.allowed, tuple(reasons), mode, gate.named_change_id)
    if gate.recovers and gate.named_change_id is None:
        first = gate.recovers[0]
        reasons.append(Reason("emergency_change_recorded", "An emergency change linked to "
                              f"incident {first.number} is recorded for this recovery, with the "
                              "deployment as its reason."))
        request = None if gate.change_requested or gate.change is not None else "emergency"
        change_id = gate.change.id if gate.change is not None else None
        return GateDecision(Decision.allowed, tuple(reasons), mode, change_id, request)
    if mode == GateMode.off:
        reasons.append(Reason("gate_off", "The gate is off; the deployment is allowed."))
        return GateDecision(Decision.allowed, tuple(reasons), mode, gate.named_change_id)
    if mode == GateMode.approval:
        return _approval(gate, reasons)
    majors = [i for i in gate.open_incidents if i.major and i.id not in recovered
              and (fixes is None or i.id != fixes.id)]
    if majors:
        reasons.append(Reason("major_incident_open", f"Major incident {majors[0].number} "
                              f"(P{majors[0].priority}) is open on {gate.service}."))
        return GateDecision(Decision.prevented, tuple(reasons), mode, gate.named_change_id)
    if gate.named_change_id is None:
        reasons.append(Reason("change_receipt", "A standard change is recorded for this "
                              "deployment; no major incident is open on the service."))
        request = None if gate.change_requested or gate.change is not None else "standard"
        change_id = gate.change.id if gate.change is not None else None
        return GateDecision(Decision.allowed, tuple(reasons), mode, change_id, request)
    reasons.append(Reason("receipt_allowed", "No major incident is open on the service; "
                          "receipt mode allows the deployment."))
    return GateDecision(Decision.allowed, tuple(reasons), mode, gate.named_change_id)
