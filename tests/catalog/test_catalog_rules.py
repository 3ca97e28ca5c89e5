"""The catalog's pure rules, without broker or database: Backstage's naming rule as Tandem holds
it, entity references, descriptor documents read into a plan, and which services an event
names."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.errors import DescriptorProblem, DescriptorsInvalid
from catalog.rules.descriptors import plan_import, read_documents, team_members
from catalog.rules.names import entity_name, member_name, name_problem, observed_name
from catalog.rules.registration import services_named


@pytest.mark.parametrize("name", ["a", "payments", "payments-api", "a1-b2-c3", "x" * 63])
def test_names_of_lowercase_groups_joined_by_hyphens_are_catalog_names(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["", "Payments", "pay_ments", "pay.ments", "-pay", "pay-",
                                  "pay--ments", "x" * 64, "pay ments", None, 7])
def test_other_names_are_refused_with_a_reason(name: object) -> None:
    assert name_problem(name)


@given(st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,10}){0,4}", fullmatch=True))
def test_every_catalog_name_is_one_the_other_services_accept(name: str) -> None:
    assert name_problem(name) is None and observed_name(name)


@pytest.mark.parametrize(("ref", "name"), [
    ("payments", "payments"), ("group:payments", "payments"),
    ("Group:default/payments", "payments"), ("default/payments", "payments")])
def test_group_references_name_the_group(ref: str, name: str) -> None:
    assert entity_name(ref, kind="group") == (name, None)


@pytest.mark.parametrize(("ref", "why"), [
    ("user:alice", "must refer to a group, not a user"),
    ("group:other/payments", "one namespace"), ("group:Pay", "lowercase"), ("", "reference")])
def test_other_references_are_refused_saying_why(ref: str, why: str) -> None:
    name, problem = entity_name(ref, kind="group")
    assert name is None and problem is not None and why in problem


@pytest.mark.parametrize(("ref", "member"), [
    ("user:default/alice", "alice"), ("alice", "alice"), ("alice@example.com",
                                                          "alice@example.com")])
def test_members_are_token_subs(ref: str, member: str) -> None:
    assert member_name(ref) == (member, None)


@pytest.mark.parametrize("ref", ["group:sre", "two words", "", 5])
def test_a_member_that_is_not_a_person_is_refused(ref: object) -> None:
    assert member_name(ref)[0] is None


COMPONENT = """
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments
  annotations:
    backstage.io/source-location: url:https://github.com/acme/payments.git/tree/main/
spec: {type: service, lifecycle: production, owner: payments-dev}
"""


def test_a_component_without_tandem_annotations_is_a_service_with_what_it_says() -> None:
    plan = plan_import(read_documents(COMPONENT, max_documents=10))
    [service] = plan.services
    assert (service.name, service.owner_team, service.operations_team, service.tier) == (
        "payments", "payments-dev", None, None)
    assert service.repository == "github.com/acme/payments"
    assert plan.named_teams == {"payments-dev"}


def test_empty_documents_are_left_out_and_too_many_are_refused() -> None:
    assert read_documents("---\n---\n" + COMPONENT + "---\n", max_documents=10) != []
    with pytest.raises(DescriptorsInvalid) as refused:
        read_documents(COMPONENT + "---" + COMPONENT + "---" + COMPONENT, max_documents=2)
    assert refused.value.problems[0].document == 3


def test_children_lend_their_members_once_even_in_a_cycle() -> None:
    plan = plan_import(read_documents("""
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: a}
spec: {members: [ann], children: [b]}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: b}
spec: {members: [bob], children: [a, c]}
""", max_documents=10))
    stored = {"c": frozenset({"cy"})}
    assert team_members("a", plan, stored) == {"ann", "bob", "cy"}
    assert team_members("b", plan, stored) == {"ann", "bob", "cy"}


def test_a_group_naming_itself_its_child_is_refused() -> None:
    with pytest.raises(DescriptorsInvalid) as refused:
        plan_import(read_documents("apiVersion: backstage.io/v1alpha1\nkind: Group\n"
                                   "metadata: {name: a}\nspec: {children: [a]}\n",
                                   max_documents=10))
    assert refused.value.problems[0].field == "spec.children"


def _problems(read: Callable[[], object]) -> list[DescriptorProblem]:
    """What ``read`` refuses (nothing, when it reads): no other error may escape."""
    try:
        read()
    except DescriptorsInvalid as refused:
        return refused.problems
    return []


@given(st.text(max_size=200))
def test_no_text_makes_the_reader_fail_other_than_by_naming_a_problem(text: str) -> None:
    problems = _problems(lambda: plan_import(read_documents(text, max_documents=50)))
    assert all(p.document >= 1 for p in problems)


def test_the_services_an_event_names_are_its_snapshots() -> None:
    assert services_named("deployment", {"deployment": {"service": "api"}}) == ["api"]
    assert services_named("freeze", {"freeze": {"services": ["b", "a", "a"]}}) == ["a", "b"]
    assert services_named("freeze", {"freeze": {"services": []}}) == []
    assert services_named("incident", {"incident": {"service": "Not A Name"}}) == []
    assert services_named("change", {"change": "garbage"}) == []


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["Component", "Group", "User", "System", "API", "backstage.io/v1alpha1",
                       "production", "group:team-a", "user:bo", "1", "https://x.example"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "metadata", "name", "spec", "owner",
                         "lifecycle", "members", "children", "memberOf", "annotations",
                         "links", "url", "title", "profile", "displayName",
                         "tandem.dev/tier", "tandem.dev/operations-team"]) | st.text(max_size=5),
        inner, max_size=5),
    max_leaves=20)


@given(st.lists(_values, max_size=4))
def test_any_parsed_documents_give_a_plan_or_named_problems(documents: list[object]) -> None:
    problems = _problems(lambda: plan_import(documents))
    assert all(1 <= p.document <= len(documents) for p in problems)
