"""Recovery from a failed deploy: what a deployment fixes and how it recovers (rollback or fix
forward), and DORA records that keep only what happened (failures and recoveries are derived
by ``tandem.dora`` when asked).

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
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("fixes", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recovery", sa.String(16), nullable=True))
        batch.add_column(sa.Column("recovers_deployment_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("recovers_incident_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("dora_fact") as batch:
        batch.add_column(sa.Column("rolled_back_at", UTCDateTime(), nullable=True))
        for name in ("failed", "failure_started_at", "failure_known_at", "recovered_at"):
            batch.drop_column(name)


def downgrade() -> None:
    with op.batch_alter_table("dora_fact") as batch:
        batch.drop_column("rolled_back_at")
        batch.add_column(sa.Column("failed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        for name in ("failure_started_at", "failure_known_at", "recovered_at"):
            batch.add_column(sa.Column(name, UTCDateTime(), nullable=True))
    with op.batch_alter_table("deployment") as batch:
        for name in ("recovers_incident_id", "recovers_deployment_id", "recovery", "fixes"):
            batch.drop_column(name)
