"""Who owns what: the projections of the catalog's services and teams (approvals by ownership,
risk by tier), the standard change catalog, and the template a change was recorded from.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.bulk_insert(sa.table("number_sequence", sa.column("prefix", sa.String),
                            sa.column("last_value", sa.Integer)),
                   [{"prefix": "STD", "last_value": 0}])
    with op.batch_alter_table("change") as batch:
        batch.add_column(sa.Column("template_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_change_template_id", ["template_id"])
    op.create_table(
        "standard_change",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_window_minutes", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approved_by", sa.String(255), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.Column("retired_by", sa.String(255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_standard_change_created_at", "standard_change", ["created_at"])
    op.create_index("ix_standard_change_service", "standard_change", ["service", "status"])
    op.create_table(
        "service_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("owner_team", sa.String(100), nullable=True),
        sa.Column("operations_team", sa.String(100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "team_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("members", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("team_view")
    op.drop_table("service_view")
    op.drop_index("ix_standard_change_service", "standard_change")
    op.drop_index("ix_standard_change_created_at", "standard_change")
    op.drop_table("standard_change")
    with op.batch_alter_table("change") as batch:
        batch.drop_index("ix_change_template_id")
        batch.drop_column("template_id")
    op.execute("DELETE FROM number_sequence WHERE prefix = 'STD'")
