"""Tandem across the wall: scenarios over real processes, a real broker, driven from outside."""

from __future__ import annotations

import pytest

from e2e import scenarios
from e2e.events import check_event_stream
from e2e.scenarios import Touched
from e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


async def test_2_failed_deployment_opens_an_incident_that_shows_in_mttr_and_dora(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.failure_opens_incident(stack)
    touched["2"] = ids


async def test_3_major_incident_freezes_its_service_until_resolved(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.major_incident_freeze(stack)
    touched["3"] = ids


async def test_4_confirmed_suspect_raises_the_change_failure_rate(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.suspect_confirmed(stack)
    touched["4"] = ids


async def test_5_sigkilled_service_restarts_with_no_effect_lost_or_doubled(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.killed_and_restarted(stack)
    touched["5"] = ids


async def test_7_a_failed_deploys_rollback_passes_its_freeze_and_ends_its_recovery_time(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.recovery_through_the_freeze(stack)
    touched["7"] = ids


async def test_8_a_resolved_p1s_review_item_closes_when_its_emergency_fix_deploys(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.review_closes_itself(stack)
    touched["8"] = ids


# Scenario 1 runs after the others: it switches the gate to approval mode (a restart).
async def test_1_approval_gate_waits_for_the_manager_and_the_change_follows(
        stack: Stack, touched: Touched) -> None:
    ids = await scenarios.approval_mode(stack)
    touched["1"] = ids


RUNNERS = {"2": scenarios.failure_opens_incident, "3": scenarios.major_incident_freeze,
           "4": scenarios.suspect_confirmed, "7": scenarios.recovery_through_the_freeze,
           "1": scenarios.approval_mode}


async def test_6_subscriber_sees_every_event_in_order_and_valid(
        stack: Stack, touched: Touched) -> None:
    # Run alone, this test plays scenarios 1-4 itself first.
    for number, run in RUNNERS.items():
        if number not in touched:
            touched[number] = await run(stack)
    # Scenario 5's aggregates too, when it ran: a restart must not double or drop an event.
    await check_event_stream(stack, set().union(*touched.values()))
