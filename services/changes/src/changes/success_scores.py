"""Each service's change success score: kept by the changes that close and the causes managers
confirm (weights in :mod:`changes.rules.success_scores`)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from changes.models import ServiceScore
from changes.schemas import SuccessScorePublic
from tandem.db import utcnow

_scores = ServiceScore.__table__  # type: ignore[attr-defined]


async def score_of(session: AsyncSession, service: str) -> SuccessScorePublic:
    """The score of ``service`` (zero before any change of it closed)."""
    row = (await session.execute(
        select(_scores.c.score, _scores.c.closed_changes, _scores.c.caused_incidents)
        .where(_scores.c.service == service))).first()
    if row is None:
        return SuccessScorePublic(service=service, score=0, closed_changes=0, caused_incidents=0)
    return SuccessScorePublic(service=service, score=row.score, closed_changes=row.closed_changes,
                              caused_incidents=row.caused_incidents)


async def add_points(session: AsyncSession, service: str, points: int, *, closed: int = 0,
                     caused: int = 0) -> None:
    """Add ``points`` (and a closed change or a caused incident) to ``service``'s score."""
    # One upsert that adds in the database: two changes of a service closing at once never
    # lose one another's points (a read-then-write would under READ COMMITTED).
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_scores)
    await session.execute(insert.values(
        service=service, score=points, closed_changes=closed, caused_incidents=caused,
        updated_at=utcnow(),
    ).on_conflict_do_update(index_elements=[_scores.c.service], set_={
        "score": _scores.c.score + insert.excluded.score,
        "closed_changes": _scores.c.closed_changes + insert.excluded.closed_changes,
        "caused_incidents": _scores.c.caused_incidents + insert.excluded.caused_incidents,
        "updated_at": insert.excluded.updated_at,
    }))
