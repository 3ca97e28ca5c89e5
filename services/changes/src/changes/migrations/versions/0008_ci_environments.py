"""Where the CI jobs of each catalog service's repository may record its standard changes, in
the service projection (0007 keeps the repository): a CI job's token records them only for the
service whose repository it was issued for, and only in those environments.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.add_column(sa.Column("ci_environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.drop_column("ci_environments")
