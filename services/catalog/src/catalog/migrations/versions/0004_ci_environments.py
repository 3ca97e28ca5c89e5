"""Where CI jobs of a service's repository may deploy it (``ci_environments``).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service") as batch:
        batch.add_column(sa.Column("ci_environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("service") as batch:
        batch.drop_column("ci_environments")
