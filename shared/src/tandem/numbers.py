"""Human numbers (``INC0001042``): a counter row per prefix, advanced in the caller's transaction.
"""

from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from tandem.db import Prepared
from tandem.tables import NumberSequence

_numbers = NumberSequence.__table__  # type: ignore[attr-defined]

#: Advance a prefix's counter by ``count``; the new last value. Every create takes a number.
_ADVANCE = Prepared(
    update(_numbers)
    .where(_numbers.c.prefix == bindparam("counter"))
    .values(last_value=_numbers.c.last_value + bindparam("count"))
    .returning(_numbers.c.last_value))


async def next_number(session: AsyncSession, prefix: str, width: int = 7) -> str:
    return (await next_numbers(session, prefix, 1, width))[0]


async def next_numbers(session: AsyncSession, prefix: str, count: int,
                       width: int = 7) -> list[str]:
    """``count`` consecutive numbers taken with one statement (a batch's records: one round
    trip, not one per record)."""
    if count < 1:
        return []
    advanced = await _ADVANCE.run(session, {"counter": prefix, "count": count})
    last = advanced[0].last_value if advanced else None
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
