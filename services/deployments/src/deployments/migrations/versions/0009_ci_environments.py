"""Where the CI jobs of each catalog service's repository may deploy it, in the service
projection (0007 keeps the repository): a CI job's token deploys only the service whose
repository it was issued for, and only there.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.add_column(sa.Column("ci_environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.drop_column("ci_environments")
