"""History imports: what every ``POST /api/v1/imports/<records>`` takes and answers.

A client (``tandem import``) sends a file's records in batches, each record with its line
number. The service validates each record on its own: a bad one is rejected with its line and
why, the rest are imported; a record imported before (by ``external_id``) is skipped. The
answer counts all three, so a person can mend the rejected lines and send the file again.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError, create_model
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

#: The most records one request may carry.
MAX_BATCH = 1000

Record = TypeVar("Record", bound=BaseModel)


class Rejected(BaseModel):
    line: int = Field(
        description="The rejected record's line number.")
    errors: list[str] = Field(
        description="What is wrong with it, one entry per field.")


class ImportSummary(BaseModel):
    imported: int = Field(
        description="How many records were imported.")
    skipped: int = Field(
        description="How many were already imported (by external_id) and left alone.")
    rejected: list[Rejected] = Field(
        description="The records refused, each with why; the rest of the batch is imported.")


class ImportLine(BaseModel):
    """A line of the file: its number (for the answer) and the record as read."""

    line: int = Field(
        description="The record's line number in the file, from 1 (named again in the answer).",
        examples=[1],
        ge=1)
    record: dict[str, Any]


class ImportBatch(BaseModel):
    records: list[ImportLine]


def import_batch(what: str, example: dict[str, Any]) -> type[ImportBatch]:
    """The request body of an import of ``what`` (``"past deployment"``), with ``example``
    as the record its API document shows."""
    line = create_model(
        "ImportLine", __base__=ImportLine,
        record=(dict[str, Any], Field(description=f"One {what} as the file holds it.",
                                      examples=[example])))
    return create_model(
        "ImportBatch", __base__=ImportBatch,
        records=(Annotated[list[line], Field(min_length=1, max_length=MAX_BATCH)],  # type: ignore[valid-type]
                 Field(description=f"The file's records, 1 to {MAX_BATCH} per request.",
                       examples=[[{"line": 1, "record": example}]])))


def validate_lines(batch: ImportBatch,
                   model: type[Record]) -> tuple[list[tuple[int, Record]], list[Rejected]]:
    """Each line's record as ``model`` (with its line number), and the lines it refuses."""
    valid: list[tuple[int, Record]] = []
    rejected: list[Rejected] = []
    for item in batch.records:
        try:
            valid.append((item.line, model.model_validate(item.record)))
        except ValidationError as exc:
            rejected.append(Rejected(line=item.line, errors=[
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                for e in exc.errors()]))
    return valid, rejected


def imported_id(external_id: str) -> str:
    """The ``external_id`` an imported record is kept under."""
    return f"import:{external_id}"


async def not_yet_imported(session: AsyncSession, column: InstrumentedAttribute[Any],
                           records: list[tuple[int, Record]]) -> list[Record]:
    """The records neither imported before (``column`` holds their ``import:`` id) nor named
    twice in this batch, in the file's order."""
    ids = {imported_id(r.external_id) for _, r in records}  # type: ignore[attr-defined]
    seen = set((await session.scalars(select(column).where(column.in_(ids)))).all())
    fresh: list[Record] = []
    for _, record in records:
        key = imported_id(record.external_id)  # type: ignore[attr-defined]
        if key not in seen:
            seen.add(key)
            fresh.append(record)
    return fresh
