"""Services, teams and the platform tables (revisions 1 to 3 of the platform in one: the
catalog starts where the other services are now).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime
from tandem.migrations import (
    add_dead_letters_and_relay_marks,
    add_outbox_sequence,
    create_platform_tables,
    drop_dead_letters_and_relay_marks,
    drop_outbox_sequence,
    drop_platform_tables,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _aggregate_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    create_platform_tables("SVC")
    # Teams number from their own counter, seeded here so the first two never race for it.
    op.execute("INSERT INTO number_sequence (prefix, last_value) VALUES ('TEAM', 0)")
    add_outbox_sequence()
    add_dead_letters_and_relay_marks()
    op.create_table(
        "service",
        *_aggregate_columns(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("lifecycle", sa.String(16), nullable=True),
        sa.Column("owner_team", sa.String(100), nullable=True, index=True),
        sa.Column("operations_team", sa.String(100), nullable=True, index=True),
        sa.Column("repository", sa.String(255), nullable=True),
        sa.Column("system", sa.String(100), nullable=True),
        sa.Column("runbook_url", sa.String(2000), nullable=True),
        sa.Column("links", JSONType, nullable=False),
        sa.Column("on_call", sa.String(255), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_service_created_at", "service", ["created_at"])
    op.create_table(
        "team",
        *_aggregate_columns(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("members", JSONType, nullable=False),
        sa.Column("notify", JSONType, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_team_created_at", "team", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_team_created_at", "team")
    op.drop_table("team")
    op.drop_index("ix_service_created_at", "service")
    op.drop_table("service")
    drop_dead_letters_and_relay_marks()
    drop_outbox_sequence()
    drop_platform_tables()
