"""The projection of the catalog's services (assignment, metrics by team).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("owner_team", sa.String(100), nullable=True, index=True),
        sa.Column("operations_team", sa.String(100), nullable=True, index=True),
        sa.Column("tier", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_view")
