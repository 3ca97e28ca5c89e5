"""The details ops people check: the resolution SLA pauses (since when its clock
stands still, and for how long it stood still before); suspects list each deployment once with
its change (the change's deployment, when the deployment went live).

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
    with op.batch_alter_table("deployment_view") as batch:
        batch.add_column(sa.Column("live_at", UTCDateTime(), nullable=True))
    with op.batch_alter_table("change_view") as batch:
        batch.add_column(sa.Column("deployment_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_change_view_deployment_id", ["deployment_id"])


def downgrade() -> None:
    with op.batch_alter_table("change_view") as batch:
        batch.drop_index("ix_change_view_deployment_id")
        batch.drop_column("deployment_id")
    with op.batch_alter_table("deployment_view") as batch:
        batch.drop_column("live_at")
    with op.batch_alter_table("incident") as batch:
        batch.drop_column("resolution_paused_seconds")
        batch.drop_column("resolution_paused_at")
