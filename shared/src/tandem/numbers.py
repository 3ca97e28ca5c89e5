"""Human numbers (``INC0001042``): a counter row per prefix, advanced in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from tandem.tables import NumberSequence

_numbers = NumberSequence.__table__  # type: ignore[attr-defined]


async def next_number(session: AsyncSession, prefix: str, width: int = 7) -> str:
    result = await session.execute(
        # A Core statement on the table: the ORM's bulk-update machinery costs more than the SQL.
        update(_numbers)
        .where(_numbers.c.prefix == prefix)
        .values(last_value=_numbers.c.last_value + 1)
        .returning(_numbers.c.last_value)
    )
    value = result.scalar_one_or_none()
    if value is None:
        session.add(NumberSequence(prefix=prefix, last_value=1))
        await session.flush()
        value = 1
    return f"{prefix}{value:0{width}d}"


async def next_numbers(session: AsyncSession, prefix: str, count: int,
                       width: int = 7) -> list[str]:
    """``count`` consecutive numbers taken with one statement (a batch's records: one round
    trip, not one per record)."""
    if count < 1:
        return []
    result = await session.execute(
        update(_numbers)
        .where(_numbers.c.prefix == prefix)
        .values(last_value=_numbers.c.last_value + count)
        .returning(_numbers.c.last_value)
    )
    last = result.scalar_one_or_none()
    if last is None:
        session.add(NumberSequence(prefix=prefix, last_value=count))
        await session.flush()
        last = count
    return [f"{prefix}{value:0{width}d}" for value in range(last - count + 1, last + 1)]


async def hold_numbers(session: AsyncSession, prefix: str) -> None:
    """Take the counter row's lock (SQLite: the write lock) without taking a number: writers
    that may create the same aggregate queue here, and the second then sees the first's."""
    await session.execute(update(_numbers).where(_numbers.c.prefix == prefix)
                          .values(last_value=_numbers.c.last_value))
