"""The details ops people check: the environments a freeze covers (an incident's
freeze covers the incident's environment only); who forced a change's implementation outside
its window, and why a window was extended; the manager who lowered a change's risk below the
rules', and why.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("freeze") as batch:
        batch.add_column(sa.Column("environments", JSONType, nullable=False,
                                   server_default="[]"))
    with op.batch_alter_table("change") as batch:
        batch.add_column(sa.Column("window_forced_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("window_extended_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("risk_lowered_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("risk_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("change") as batch:
        batch.drop_column("risk_reason")
        batch.drop_column("risk_lowered_by")
        batch.drop_column("window_extended_reason")
        batch.drop_column("window_forced_by")
    with op.batch_alter_table("freeze") as batch:
        batch.drop_column("environments")
