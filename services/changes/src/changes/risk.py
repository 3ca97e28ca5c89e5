"""A change's risk, assessed by the ordered rules (:mod:`changes.rules.risk`) from what the
service knows now: its open incidents, its change success score and its tier (the
catalog's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from changes import catalog, incidents, success_scores
from changes.config import ChangesSettings
from changes.rules.risk import RiskFacts, assess_risk


async def assess(session: AsyncSession, settings: ChangesSettings, *, change_type: str,
                 service: str, environment: str, planned_start: datetime | None,
                 planned_end: datetime | None) -> tuple[str, str | None]:
    """``(risk, the rule that set it)`` for a change with these facts (rule None: default)."""
    open_incidents, open_major = await incidents.open_incidents(session, service, environment)
    window = None
    if planned_start is not None and planned_end is not None:
        window = (planned_end - planned_start).total_seconds() / 3600
    facts = RiskFacts(type=change_type, environment=environment, window_hours=window,
                      success_score=(await success_scores.score_of(session, service)).score,
                      open_incidents=open_incidents, open_major_incidents=open_major,
                      tier=await catalog.tier_of(session, service))
    return assess_risk(settings.risk_rules, settings.default_risk, facts)
