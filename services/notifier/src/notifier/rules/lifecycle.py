"""A subscription's states: ``active`` (events are delivered) and ``disabled`` (none are
matched; its pending deliveries wait until it is enabled again)."""

from __future__ import annotations

from tandem.transitions import StateMachine

SUBSCRIPTION_LIFECYCLE = StateMachine("subscription", {
    "active": {"disabled"},
    "disabled": {"active"},
})
