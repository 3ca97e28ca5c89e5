"""The resolution SLA pauses (issue 23): since when its clock stands still, and for how long
it stood still before.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("resolution_paused_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("resolution_paused_seconds", sa.Float(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.drop_column("resolution_paused_seconds")
        batch.drop_column("resolution_paused_at")
