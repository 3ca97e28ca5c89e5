"""Keyset pagination with opaque cursors: newest first by ``(created_at, id)``."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from tandem.problems import Problem

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A list answer: ``{"items": [...], "next_cursor": "..." | null}``."""

    items: list[T] = Field(description="This page's entries, newest first.")
    next_cursor: str | None = Field(
        description="Pass it as `cursor` to fetch the next page; null on the last page.")


#: What a list's ``limit`` and ``cursor`` mean, for lists that declare them themselves.
LIMIT_DESCRIPTION = "At most this many entries in the page (1 to 200)."
CURSOR_DESCRIPTION = ("Where the page starts: the `next_cursor` of the previous page; "
                      "unset, the newest entries.")
#: A cursor as this service issues it (for examples).
CURSOR_EXAMPLE = ("WyIyMDI2LTAzLTAxVDEwOjQyOjAwKzAwOjAwIiwiMDE5NTUwM2UtN2MxYS03ZDNlLTliMmYtM2M0ZD"
                  "VlNmY3YThiIl0")

#: A list's page size (50 by default where it is used).
Limit = Annotated[int, Query(ge=1, le=200, description=LIMIT_DESCRIPTION, examples=[50])]
#: A list's page position: the ``next_cursor`` of the page before.
Cursor = Annotated[str | None, Query(max_length=512, description=CURSOR_DESCRIPTION,
                                     examples=[CURSOR_EXAMPLE])]


def encode_cursor(created_at: datetime, id_: uuid.UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(id_)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, id_ = orjson.loads(raw)
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:  # this service never issues one without its offset
            raise ValueError(created)
        return moment, uuid.UUID(id_)
    except Exception:
        raise Problem(
            400, "The cursor is not one this service issued.", type_="urn:tandem:problem:bad-cursor"
        ) from None


async def page(
    session: AsyncSession, stmt: Select[Any], model: type[T], *, limit: int, cursor: str | None
) -> tuple[list[T], str | None]:
    """One page of ``stmt`` over ``model`` (which has ``created_at`` and ``id``), newest first."""
    created_col = model.created_at  # type: ignore[attr-defined]
    id_col = model.id  # type: ignore[attr-defined]
    if cursor:
        c_at, c_id = decode_cursor(cursor)
        stmt = stmt.where(or_(created_col < c_at, and_(created_col == c_at, id_col < c_id)))
    stmt = stmt.order_by(created_col.desc(), id_col.desc()).limit(limit + 1)
    items = list((await session.scalars(stmt)).all())
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        last = items[-1]
        next_cursor = encode_cursor(last.created_at, last.id)  # type: ignore[attr-defined]
    return items, next_cursor
