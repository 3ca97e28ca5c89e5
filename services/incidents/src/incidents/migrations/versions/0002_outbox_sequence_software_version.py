"""The outbox keeps each event's sequence (platform revision 2), and the deployment view names
the deployed software's version as the deployments service now does (``software_version``).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from tandem.migrations import add_outbox_sequence, drop_outbox_sequence

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_sequence()
    with op.batch_alter_table("deployment_view") as batch:
        batch.alter_column("version", new_column_name="software_version")


def downgrade() -> None:
    with op.batch_alter_table("deployment_view") as batch:
        batch.alter_column("software_version", new_column_name="version")
    drop_outbox_sequence()
