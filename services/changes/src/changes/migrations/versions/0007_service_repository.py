"""The repository of each catalog service, in the service projection: a CI job's token records
standard changes only for the service whose repository it was issued for.

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
    with op.batch_alter_table("service_view") as batch:
        batch.add_column(sa.Column("repository", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_view") as batch:
        batch.drop_column("repository")
