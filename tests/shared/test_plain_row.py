"""``tandem.aggregate.plain_row``: a new row built as the table model's constructor builds it
(values given, each field's default for the rest), stored by the ORM as it holds it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column as SAColumn
from sqlalchemy import select
from sqlmodel import Field

from tandem.aggregate import plain_row
from tandem.db import Database, JSONType, new_id, service_table_base

Base = service_table_base()


class Gadget(Base, table=True):  # type: ignore[call-arg]
    __tablename__ = "gadget"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str
    status: str = "new"
    tags: list[str] = Field(default_factory=list, sa_column=SAColumn(JSONType, nullable=False))
    note: str | None = None


def test_a_plain_row_holds_what_the_constructor_would() -> None:
    made = Gadget(name="gear")
    plain = plain_row(Gadget, {"name": "gear", "not_a_field": 1})
    fields = ("name", "status", "tags", "note")
    assert {f: getattr(plain, f) for f in fields} == {f: getattr(made, f) for f in fields}
    assert plain.id.version == 7
    assert plain.model_fields_set == made.model_fields_set == {"name"}
    other: Any = plain_row(Gadget, {"name": "cog"})
    plain.tags.append("red")
    assert other.tags == [] and other.id != plain.id  # each row its own default


async def test_a_plain_row_is_stored_with_its_values_and_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'gadgets.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with db.transaction() as session:
            row = plain_row(Gadget, {"name": "gear", "tags": ["a"]})
            session.add(row)
            await session.flush()
            row.status = "ready"  # a change after the insert is tracked as usual
        async with db.transaction(read_only=True) as session:
            stored = (await session.scalars(select(Gadget))).one()
        assert (stored.id, stored.name, stored.status, stored.tags, stored.note) == (
            row.id, "gear", "ready", ["a"], None)
    finally:
        await db.dispose()
