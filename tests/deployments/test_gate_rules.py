"""The gate decision as a pure function: one test per reason and per mode."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deployments.rules.gate import (
    ChangeFacts,
    Decision,
    FreezeFacts,
    GateInput,
    GateMode,
    IncidentFacts,
    change_rejected,
    decide_gate,
    freeze_covers,
)
from deployments.rules.recovery import PastDeployment, recovery_of

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def gate(mode: GateMode = GateMode.receipt, **kw: object) -> GateInput:
    return GateInput(**{"service": "api", "environment": "production", "mode": mode,  # type: ignore[arg-type]
                        "now": NOW, **kw})


def change(status: str = "scheduled", type_: str = "normal", service: str = "api",
           **kw: object) -> ChangeFacts:
    return ChangeFacts(**{"id": uuid.uuid4(), "number": "CHG0000001", "type": type_,  # type: ignore[arg-type]
                          "service": service, "status": status,
                          "planned_start": NOW - HOUR, "planned_end": NOW + HOUR, **kw})


def freeze(services: tuple[str, ...] = ("api",), **kw: object) -> FreezeFacts:
    return FreezeFacts(**{"id": uuid.uuid4(), "number": "FRZ0000001", "services": services,  # type: ignore[arg-type]
                          "starts_at": NOW - HOUR, "ends_at": NOW + HOUR, "status": "active",
                          **kw})


def incident(priority: int = 1, **kw: object) -> IncidentFacts:
    return IncidentFacts(**{"id": uuid.uuid4(), "number": "INC0000001", "service": "api",  # type: ignore[arg-type]
                            "priority": priority, "major": priority <= 2, "status": "new",
                            **kw})


def codes(decision: object) -> list[str]:
    return [r.code for r in decision.reasons]  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", list(GateMode))
def test_non_production_is_allowed_in_every_mode(mode: GateMode) -> None:
    d = decide_gate(gate(mode, environment="staging", freezes=(freeze(),),
                         open_incidents=(incident(),)))
    assert (d.decision, codes(d), d.request_change) == (Decision.allowed, ["non_production"], None)


@pytest.mark.parametrize("mode", list(GateMode))
def test_active_freeze_prevents_in_every_mode(mode: GateMode) -> None:
    d = decide_gate(gate(mode, freezes=(freeze(),)))
    assert (d.decision, codes(d)) == (Decision.prevented, ["freeze_active"])
    assert d.request_change is None


def test_freeze_of_every_service_covers_this_one() -> None:
    assert decide_gate(gate(freezes=(freeze(services=()),))).decision == Decision.prevented


@pytest.mark.parametrize("f", [
    freeze(services=("web",)),                                  # another service
    freeze(status="ended"),                                      # ended early
    freeze(starts_at=NOW + HOUR, ends_at=NOW + 2 * HOUR),        # not started
    freeze(starts_at=NOW - 2 * HOUR, ends_at=NOW),               # ended at now (end exclusive)
])
def test_freeze_that_does_not_cover_now_does_not_prevent(f: FreezeFacts) -> None:
    assert not freeze_covers(f, "api", NOW)
    assert decide_gate(gate(freezes=(f,))).decision == Decision.allowed


def test_incident_freeze_without_end_covers_until_it_ends() -> None:
    f = freeze(source="incident", ends_at=None, incident_id=uuid.uuid4())
    assert freeze_covers(f, "api", NOW + timedelta(days=30))


def test_a_freeze_says_what_holds_the_service_and_until_when() -> None:
    inc = incident(priority=1)
    d = decide_gate(gate(freezes=(freeze(source="incident", ends_at=None, incident_id=inc.id),),
                         open_incidents=(inc,)))
    assert inc.number in d.reasons[0].message and "emergency change" in d.reasons[0].message
    manual = freeze()
    d = decide_gate(gate(freezes=(manual,)))
    assert d.reasons[0].message.endswith(f"until {manual.ends_at.isoformat()}.")


def test_emergency_change_for_the_open_incident_passes_the_freeze() -> None:
    inc = incident(priority=1)
    fix = change("scheduled", "emergency", incident_id=inc.id)
    d = decide_gate(gate(freezes=(freeze(source="incident", incident_id=inc.id),),
                         open_incidents=(inc,), named_change_id=fix.id, change=fix))
    assert (d.decision, codes(d)) == (Decision.allowed, ["emergency_change", "change_covers"])


def test_emergency_change_for_another_incident_does_not_pass_the_freeze() -> None:
    fix = change("scheduled", "emergency", incident_id=uuid.uuid4())
    d = decide_gate(gate(freezes=(freeze(),), open_incidents=(incident(),),
                         named_change_id=fix.id, change=fix))
    assert codes(d) == ["freeze_active"]


def test_emergency_change_in_receipt_mode_is_not_stopped_by_the_incident_it_fixes() -> None:
    inc = incident(priority=1)
    fix = change("authorize", "emergency", incident_id=inc.id)
    d = decide_gate(gate(GateMode.receipt, freezes=(freeze(),), open_incidents=(inc,),
                         named_change_id=fix.id, change=fix))
    assert d.decision == Decision.allowed
    assert codes(d) == ["emergency_change", "change_not_authorized", "receipt_allowed"]


@pytest.mark.parametrize("mode", list(GateMode))
@pytest.mark.parametrize("status", ["scheduled", "implement"])
def test_named_change_covering_now_allows_in_every_mode(mode: GateMode, status: str) -> None:
    c = change(status)
    d = decide_gate(gate(mode, named_change_id=c.id, change=c))
    assert (d.decision, codes(d), d.change_id) == (Decision.allowed, ["change_covers"], c.id)
    assert d.request_change is None


@pytest.mark.parametrize("mode", list(GateMode))
def test_a_standard_change_authorizes_only_from_a_template(mode: GateMode) -> None:
    outside = change("scheduled", type_="standard")
    d = decide_gate(gate(mode, named_change_id=outside.id, change=outside))
    assert "change_covers" not in codes(d) and codes(d)[0] == "change_outside_template"
    if mode == GateMode.approval:
        assert d.decision == Decision.prevented
    templated = change("scheduled", type_="standard", template_id=uuid.uuid4())
    d = decide_gate(gate(mode, named_change_id=templated.id, change=templated))
    assert (d.decision, codes(d)) == (Decision.allowed, ["change_covers"])


def test_named_change_outside_its_window_is_prevented_in_approval_mode() -> None:
    c = change("scheduled", planned_start=NOW + HOUR, planned_end=NOW + 2 * HOUR)
    d = decide_gate(gate(GateMode.approval, named_change_id=c.id, change=c))
    assert (d.decision, codes(d)) == (Decision.prevented, ["change_outside_window"])


def test_named_change_of_another_service_is_prevented_in_approval_mode() -> None:
    c = change(service="web")
    d = decide_gate(gate(GateMode.approval, named_change_id=c.id, change=c))
    assert (d.decision, codes(d)) == (Decision.prevented, ["change_other_service"])


def test_named_change_not_yet_known_awaits_in_approval_mode() -> None:
    named = uuid.uuid4()
    d = decide_gate(gate(GateMode.approval, named_change_id=named))
    assert (d.decision, codes(d), d.change_id) == (Decision.awaiting, ["change_unknown"], named)
    assert d.request_change is None


def test_named_change_in_assess_awaits_in_approval_mode() -> None:
    c = change("assess")
    d = decide_gate(gate(GateMode.approval, named_change_id=c.id, change=c))
    assert (d.decision, codes(d)) == (Decision.awaiting, ["change_not_authorized"])


def test_receipt_mode_records_a_standard_change_and_allows() -> None:
    d = decide_gate(gate(GateMode.receipt))
    assert (d.decision, codes(d), d.request_change) == (Decision.allowed, ["change_receipt"],
                                                        "standard")


def test_receipt_mode_does_not_ask_twice() -> None:
    d = decide_gate(gate(GateMode.receipt, change_requested=True))
    assert d.decision == Decision.allowed and d.request_change is None


def test_receipt_mode_with_a_named_change_that_does_not_cover_allows_without_a_receipt() -> None:
    c = change("new")
    d = decide_gate(gate(GateMode.receipt, named_change_id=c.id, change=c))
    assert (d.decision, codes(d)) == (Decision.allowed,
                                      ["change_not_authorized", "receipt_allowed"])
    assert d.request_change is None


@pytest.mark.parametrize("priority", [1, 2])
def test_receipt_mode_prevents_while_a_major_incident_is_open(priority: int) -> None:
    d = decide_gate(gate(GateMode.receipt, open_incidents=(incident(priority),)))
    assert (d.decision, codes(d)) == (Decision.prevented, ["major_incident_open"])
    assert d.request_change is None


def test_receipt_mode_allows_with_only_a_minor_incident_open() -> None:
    assert decide_gate(gate(open_incidents=(incident(3),))).decision == Decision.allowed


def test_approval_mode_asks_for_a_normal_change_and_awaits() -> None:
    d = decide_gate(gate(GateMode.approval))
    assert (d.decision, codes(d), d.request_change) == (Decision.awaiting, ["change_requested"],
                                                        "normal")


def test_approval_mode_does_not_ask_twice() -> None:
    d = decide_gate(gate(GateMode.approval, change_requested=True))
    assert d.decision == Decision.awaiting and d.request_change is None


@pytest.mark.parametrize("status", ["new", "assess", "authorize"])
def test_approval_mode_awaits_its_change_until_authorized(status: str) -> None:
    c = change(status)
    d = decide_gate(gate(GateMode.approval, change=c, change_requested=True))
    assert (d.decision, codes(d), d.change_id) == (Decision.awaiting, ["change_pending"], c.id)


@pytest.mark.parametrize("status", ["scheduled", "implement"])
def test_approval_mode_allows_once_its_change_is_authorized(status: str) -> None:
    # The requested change's window is the gate's own guess; authorization is what counts.
    c = change(status, planned_start=NOW - 3 * HOUR, planned_end=NOW - 2 * HOUR)
    d = decide_gate(gate(GateMode.approval, change=c, change_requested=True))
    assert (d.decision, codes(d), d.change_id) == (Decision.allowed, ["change_authorized"], c.id)


def test_approval_mode_prevents_when_its_change_is_rejected() -> None:
    c = change("new", rejected=True)
    d = decide_gate(gate(GateMode.approval, change=c, change_requested=True))
    assert (d.decision, codes(d)) == (Decision.prevented, ["change_rejected"])


def test_approval_mode_prevents_when_its_change_is_canceled() -> None:
    c = change("canceled")
    d = decide_gate(gate(GateMode.approval, change=c, change_requested=True))
    assert (d.decision, codes(d)) == (Decision.prevented, ["change_canceled"])


@pytest.mark.parametrize("status", ["review", "closed"])
def test_approval_mode_prevents_when_its_change_is_already_past(status: str) -> None:
    d = decide_gate(gate(GateMode.approval, change=change(status), change_requested=True))
    assert (d.decision, codes(d)) == (Decision.prevented, ["change_closed"])


def test_approval_mode_ignores_open_major_incidents() -> None:
    c = change("scheduled")
    d = decide_gate(gate(GateMode.approval, open_incidents=(incident(1),), change=c,
                         change_requested=True))
    assert d.decision == Decision.allowed


def test_off_mode_allows_even_with_a_major_incident_open() -> None:
    d = decide_gate(gate(GateMode.off, open_incidents=(incident(1),)))
    assert (d.decision, codes(d), d.request_change) == (Decision.allowed, ["gate_off"], None)


def test_every_reason_reads_as_a_sentence() -> None:
    inputs = [gate(), gate(GateMode.approval), gate(GateMode.off), gate(freezes=(freeze(),)),
              gate(open_incidents=(incident(),)), gate(environment="testing")]
    for d in map(decide_gate, inputs):
        for reason in d.reasons:
            assert reason.message[0].isupper() and reason.message.endswith(".")


@pytest.mark.parametrize(("status", "before", "was", "recorded", "rejected"), [
    ("new", "assess", False, False, True),  # sent back from assess: rejected
    ("new", "authorize", False, False, True),
    ("new", None, False, True, True),  # first seen with a recorded rejection
    ("new", "new", True, False, True),  # stays rejected while it stays new
    ("new", "new", False, False, False),  # a new change is not a rejected one
    ("new", None, False, False, False),
    ("assess", "new", True, False, False),  # moving on again clears it
    ("scheduled", "authorize", False, True, False),
])
def test_a_change_stands_rejected_when_sent_back_to_new(
        status: str, before: str | None, was: bool, recorded: bool, rejected: bool) -> None:
    assert change_rejected(status, before=before, was_rejected=was,
                           rejection_recorded=recorded) is rejected


# --- recovery from a failed deploy -----------------------------------------------------------

def past(status: str, version: str) -> PastDeployment:
    return PastDeployment(id=uuid.uuid4(), software_version=version, status=status)


def test_a_redeploy_of_the_last_good_version_after_a_failure_is_a_rollback() -> None:
    good, bad = past("succeeded", "1.0"), past("failed", "1.1")
    caused = incident(2, cause_deployment_id=bad.id)
    other = incident(1, number="INC0000002")  # a monitor's: no cause
    r = recovery_of(software_version="1.0", history=[bad, good],
                    open_incidents=(caused, other), fixes=None)
    assert r is not None and (r.kind, r.deployment_id, r.incident_id) == (
        "rollback", bad.id, caused.id)
    assert r.incidents == (caused,)
    # Another version, or no failure since the last success, is no recovery.
    assert recovery_of(software_version="1.2", history=[bad, good], open_incidents=(caused,),
                       fixes=None) is None
    assert recovery_of(software_version="1.0", history=[good], open_incidents=(),
                       fixes=None) is None


def test_a_succeeded_deployment_named_a_cause_is_not_the_version_to_roll_back_to() -> None:
    older, blamed = past("succeeded", "1.0"), past("succeeded", "1.1")
    caused = incident(2, cause_deployment_id=blamed.id)
    r = recovery_of(software_version="1.0", history=[blamed, older],
                    open_incidents=(caused,), fixes=None)
    assert r is not None and r.kind == "rollback" and r.incidents == (caused,)
    assert recovery_of(software_version="1.1", history=[blamed, older],
                       open_incidents=(caused,), fixes=None) is None


def test_a_fix_forward_recovers_only_a_deployment_caused_incident() -> None:
    bad = uuid.uuid4()
    caused = incident(2, cause_deployment_id=bad)
    r = recovery_of(software_version="9", history=[], open_incidents=(caused,), fixes=caused)
    assert r is not None and (r.kind, r.deployment_id, r.incidents) == (
        "fix_forward", bad, (caused,))
    monitor = incident(1)
    r = recovery_of(software_version="9", history=[], open_incidents=(monitor,), fixes=monitor)
    assert r is not None and r.kind == "fix_forward" and r.incidents == ()


@pytest.mark.parametrize("mode", list(GateMode))
def test_a_recovery_passes_its_incidents_freeze_with_an_emergency_change(
        mode: GateMode) -> None:
    caused = incident(2, cause_deployment_id=uuid.uuid4())
    own = freeze(source="incident", incident_id=caused.id)
    d = decide_gate(gate(mode, freezes=(own,), open_incidents=(caused,), recovery="rollback",
                         recovers=(caused,)))
    assert (d.decision, d.request_change) == (Decision.allowed, "emergency")
    assert codes(d) == ["recovery", "emergency_change_recorded"]
    # Asked once: a re-decision never asks again.
    again = decide_gate(gate(mode, freezes=(own,), open_incidents=(caused,),
                             recovery="rollback", recovers=(caused,), change_requested=True))
    assert (again.decision, again.request_change) == (Decision.allowed, None)


def test_a_recovery_is_still_held_by_another_incidents_freeze_and_every_other_deploy_too(
        ) -> None:
    caused = incident(2, cause_deployment_id=uuid.uuid4())
    monitor = incident(1, number="INC0000002")
    freezes = (freeze(source="incident", incident_id=caused.id),
               freeze(source="incident", incident_id=monitor.id, number="FRZ0000002"))
    d = decide_gate(gate(freezes=freezes, open_incidents=(caused, monitor),
                         recovery="rollback", recovers=(caused,)))
    assert (d.decision, codes(d)) == (Decision.prevented, ["freeze_active"])
    assert "FRZ0000002" in d.reasons[0].message
    plain = decide_gate(gate(freezes=freezes[:1], open_incidents=(caused,)))
    assert (plain.decision, codes(plain)) == (Decision.prevented, ["freeze_active"])
