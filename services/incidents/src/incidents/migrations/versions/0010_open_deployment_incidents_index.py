"""A partial index of the open incidents a failed deployment opened, by service and
environment: every incident a monitor opens looks for them (to raise their priority), and
without it that read went through every incident of the service, growing with the storm.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_CONDITION = ("source = 'deployment' AND "
              "status IN ('new', 'acknowledged', 'in_progress', 'on_hold')")


def upgrade() -> None:
    op.create_index("ix_incident_open_from_deployment", "incident",
                    ["service", "environment"], sqlite_where=sa.text(_CONDITION),
                    postgresql_where=sa.text(_CONDITION))


def downgrade() -> None:
    op.drop_index("ix_incident_open_from_deployment", "incident")
