"""Approvals by ownership and the standard change catalog as pure rules: who approves a change
of a service the catalog describes, how a round of decisions counts, and what a template
allows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from changes.errors import (
    TemplateForStandardOnly,
    TemplateNotUsable,
    TemplateRequired,
    TemplateUnknown,
    TemplateWindowExceeded,
)
from changes.rules.approvals import Ownership, approval_refusal, approval_rule, tally
from changes.rules.standard_changes import TemplateFacts, template_refusal, templated_window

OWNED = Ownership(service="payments", known=True, tier=1, owner_team="dev",
                  operations_team="ops", owner_members=frozenset({"ann", "al"}),
                  operations_members=frozenset({"oz", "ann"}))


def rule_of(ownership: Ownership = OWNED, change_type: str = "normal", *, normal: int = 1,
            dual: int = 1):  # type: ignore[no-untyped-def]
    return approval_rule(change_type, ownership, normal=normal, emergency=1,
                         dual_approval_tier=dual)


def test_a_tier_1_change_needs_a_manager_of_each_team() -> None:
    rule = rule_of()
    assert (rule.kind, rule.required, [s.team for s in rule.sides]) == ("ownership", 2,
                                                                        ["dev", "ops"])
    assert tally(rule, [("al", "approve")]).missing == ("ops",)
    done = tally(rule, [("al", "approve"), ("oz", "approve")])
    assert done.complete and done.approved_by == (("al",), ("oz",))


def test_one_person_in_both_teams_stands_for_one_side() -> None:
    rule = rule_of()
    assert tally(rule, [("ann", "approve")]).missing == ("ops",)
    assert tally(rule, [("ann", "approve"), ("oz", "approve")]).complete
    assert tally(rule, [("ann", "approve"), ("al", "approve")]).complete


def test_rejections_and_outsiders_do_not_count() -> None:
    rule = rule_of()
    assert tally(rule, [("al", "reject"), ("oz", "approve")]).missing == ("dev",)
    assert tally(rule, [("carol", "approve"), ("al", "approve")]).received == 1
    refusal = approval_refusal(change_type="normal", status="authorize", required=2,
                               approver="carol", requester="pat", decided_already=False,
                               rule=rule)
    assert refusal is not None and refusal.code == "not-on-the-owning-teams"


@pytest.mark.parametrize(("ownership", "dual", "kind", "unowned"), [
    (Ownership(service="x"), 1, "managers", True),
    (Ownership(service="x", known=True, tier=1), 1, "managers", True),
    (OWNED, 0, "managers", False),
    (Ownership(service="x", known=True, tier=2, owner_team="dev"), 1, "managers", False),
    (Ownership(service="x", known=True, tier=2, owner_team="dev"), 2, "ownership", False),
])
def test_which_changes_are_approved_by_ownership(ownership: Ownership, dual: int, kind: str,
                                                 unowned: bool) -> None:
    rule = rule_of(ownership, dual=dual)
    assert (rule.kind, rule.unowned) == (kind, unowned)
    if unowned:
        assert rule.note and "unowned" in rule.note


def test_the_count_setting_still_applies_on_top_of_the_two_teams() -> None:
    rule = rule_of(normal=3)
    assert rule.required == 3
    assert not tally(rule, [("al", "approve"), ("oz", "approve")]).complete
    assert tally(rule, [("al", "approve"), ("oz", "approve"), ("ann", "approve")]).complete


def test_a_standard_change_takes_no_approvals() -> None:
    assert rule_of(change_type="standard").kind == "none"


@given(st.lists(st.tuples(st.sampled_from(["ann", "al", "oz", "carol", "pat"]),
                          st.sampled_from(["approve", "reject"])), max_size=6))
def test_a_complete_round_always_has_two_people_one_of_each_team(
        decisions: list[tuple[str, str]]) -> None:
    counted = tally(rule_of(), decisions)
    if counted.complete:
        dev, ops = counted.approved_by
        assert dev and ops and len(set(dev) | set(ops)) >= 2


TEMPLATE = TemplateFacts(id=uuid.uuid4(), number="STD0000001", service="payments",
                         status="active", max_window_minutes=30)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"by_pipeline": True, "template_named": False, "template": None}, TemplateRequired),
    ({"template_named": True, "template": None}, TemplateUnknown),
    ({"template": TemplateFacts(**{**TEMPLATE.__dict__, "service": "web"})}, TemplateNotUsable),
    ({"template": TemplateFacts(**{**TEMPLATE.__dict__, "status": "retired"})},
     TemplateNotUsable),
    ({"change_type": "normal"}, TemplateForStandardOnly),
])
def test_what_a_template_refuses(kwargs: dict[str, object], error: type) -> None:
    given_ = {"change_type": "standard", "service": "payments", "by_pipeline": False,
              "template_named": True, "template": TEMPLATE, **kwargs}
    assert isinstance(template_refusal(**given_), error)  # type: ignore[arg-type]


def test_people_record_standard_changes_without_a_template_and_pipelines_with_one() -> None:
    assert template_refusal(change_type="standard", service="payments", by_pipeline=False,
                            template_named=False, template=None) is None
    assert template_refusal(change_type="standard", service="payments", by_pipeline=True,
                            template_named=True, template=TEMPLATE) is None


def test_a_templated_window_is_at_most_the_templates_longest() -> None:
    now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert templated_window(None, None, TEMPLATE, now) == (now, now + timedelta(minutes=30))
    with pytest.raises(TemplateWindowExceeded):
        templated_window(now, now + timedelta(minutes=31), TEMPLATE, now)
