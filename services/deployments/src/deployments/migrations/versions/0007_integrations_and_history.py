"""Integrations in and history: a deployment's id at its sender (a GitHub or GitLab
deployment, a PagerDuty change event, an imported record), the webhook deliveries already
applied, and the catalog's repository of each service (a repository names its service).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployment") as batch:
        batch.add_column(sa.Column("external_id", sa.String(300), nullable=True))
        batch.add_column(sa.Column("imported", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("summary", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("links", JSONType, nullable=False, server_default="[]"))
        batch.create_index("ux_deployment_external_id", ["external_id"], unique=True)
    with op.batch_alter_table("service_view") as batch:
        batch.add_column(sa.Column("repository", sa.String(255), nullable=True))
        batch.create_index("ix_service_view_repository", ["repository"])
    op.create_table(
        "integration_delivery",
        sa.Column("sender", sa.String(16), primary_key=True),
        sa.Column("delivery_id", sa.String(255), primary_key=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("integration_delivery")
    with op.batch_alter_table("service_view") as batch:
        batch.drop_index("ix_service_view_repository")
        batch.drop_column("repository")
    with op.batch_alter_table("deployment") as batch:
        batch.drop_index("ux_deployment_external_id")
        batch.drop_column("links")
        batch.drop_column("summary")
        batch.drop_column("imported")
        batch.drop_column("external_id")
