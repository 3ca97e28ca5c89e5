"""History: an incident's id where it came from (a PagerDuty incident, an imported record),
so importing it again skips it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.add_column(sa.Column("external_id", sa.String(300), nullable=True))
        batch.create_index("ux_incident_external_id", ["external_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("incident") as batch:
        batch.drop_index("ux_incident_external_id")
        batch.drop_column("external_id")
