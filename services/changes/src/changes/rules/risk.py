"""Risk: ordered rules, the first whose conditions all hold sets a change's risk (domain.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tandem.errors import Forbidden, Invalid

Risk = Literal["low", "moderate", "high", "very_high"]


class RiskRule(BaseModel):
    """One ordered risk rule: every condition it names must hold; the first match sets risk."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    risk: Risk
    environments: list[str] | None = None
    types: list[Literal["standard", "normal", "emergency"]] | None = None
    #: The planned window is at least this long.
    min_window_hours: float | None = None
    #: The service's change success score is at most this.
    max_success_score: int | None = None
    #: The service has at least this many open incidents in the change's environment.
    min_open_incidents: int | None = None
    #: ... of which at least this many are major (P1/P2 or declared).
    min_open_major_incidents: int | None = None
    #: The service's tier (the catalog's; 1 = most critical) is one of these.
    tiers: list[int] | None = None


DEFAULT_RISK_RULES = [
    RiskRule(name="production change while the service has an open major incident",
             risk="very_high", environments=["production"], min_open_major_incidents=1),
    RiskRule(name="production change of a service with a poor change success score",
             risk="high", environments=["production"], max_success_score=-10),
    RiskRule(name="production change of a tier-1 service", risk="high",
             environments=["production"], tiers=[1]),
    RiskRule(name="emergency change", risk="high", types=["emergency"]),
    RiskRule(name="production window of 4 hours or more", risk="moderate",
             environments=["production"], min_window_hours=4),
    RiskRule(name="normal change in production", risk="moderate", environments=["production"],
             types=["normal"]),
    RiskRule(name="the service has open incidents", risk="moderate", min_open_incidents=1),
]

#: The ``risk_rule`` of a risk the requester chose (it is kept; no rule overrides it).
SET_BY_REQUESTER = "set by the requester"

#: Risk levels, lowest first.
RISK_ORDER = ("low", "moderate", "high", "very_high")


def risk_rank(level: str) -> int:
    return RISK_ORDER.index(level)


def chosen_risk(proposed: str, assessed: str, assessed_rule: str | None, *, actor: str,
                may_lower: bool, reason: str | None) -> tuple[str, str, str | None]:
    """``(risk, risk_rule, lowered_by)`` when a person chooses the risk over the rules'
    ``assessed`` one. A requester may propose a risk no lower than the rules'; only a manager
    may lower it, and only with a reason (``Forbidden``/``Invalid`` naming the field)."""
    if risk_rank(proposed) >= risk_rank(assessed):
        if proposed == assessed:
            return assessed, assessed_rule or f"{SET_BY_REQUESTER} (as the rules give)", None
        return proposed, f"raised by the requester above the rules' {assessed}", None
    if not may_lower:
        raise RiskBelowRules(proposed, assessed, assessed_rule)
    if not reason or not reason.strip():
        raise Invalid("risk_reason", "required to lower the risk below the rules'",
                      detail=f"Lowering the risk below the rules' {assessed} needs risk_reason.")
    return proposed, f"lowered by {actor} from the rules' {assessed}: {reason.strip()}"[:200], \
        actor


class RiskBelowRules(Forbidden):
    """A requester proposing a risk lower than the rules give: only a manager lowers it."""

    code = "risk-below-rules"

    def __init__(self, proposed: str, assessed: str, rule: str | None) -> None:
        super().__init__(
            f"The rules give this change {assessed} risk"
            + (f" ({rule})" if rule else "") + f"; a requester may propose {assessed} or "
            f"higher, not {proposed}. A manager may lower it with a risk_reason.",
            errors=[{"field": "risk", "message": f"lower than the rules' {assessed}"}],
            assessed_risk=assessed)


@dataclass(frozen=True)
class RiskFacts:
    type: str
    environment: str
    window_hours: float | None
    success_score: int
    open_incidents: int
    open_major_incidents: int
    #: The service's tier in the catalog; None when the catalog gives none.
    tier: int | None = None


def assess_risk(rules: Iterable[RiskRule], default: str,
                facts: RiskFacts) -> tuple[str, str | None]:
    """The first rule whose conditions all hold sets the risk; else ``default``."""
    for rule in rules:
        if rule.environments is not None and facts.environment not in rule.environments:
            continue
        if rule.types is not None and facts.type not in rule.types:
            continue
        if rule.min_window_hours is not None and (
                facts.window_hours is None or facts.window_hours < rule.min_window_hours):
            continue
        if rule.max_success_score is not None and facts.success_score > rule.max_success_score:
            continue
        if rule.min_open_incidents is not None and facts.open_incidents < rule.min_open_incidents:
            continue
        if (rule.min_open_major_incidents is not None
                and facts.open_major_incidents < rule.min_open_major_incidents):
            continue
        if rule.tiers is not None and facts.tier not in rule.tiers:
            continue
        return rule.risk, rule.name
    return default, None
