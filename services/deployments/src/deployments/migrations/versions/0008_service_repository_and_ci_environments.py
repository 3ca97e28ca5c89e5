"""The repository of each catalog service, and where its CI jobs may deploy it, in the service
projection: a CI job's token deploys only the service whose repository it was issued for.

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
        batch.add_column(sa.Column("repository", sa.String(255), nullable=True))
        batch.add_column(sa.Column("ci_environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.drop_column("ci_environments")
        batch.drop_column("repository")
