"""A deployment's aggregate counter is ``version``, as every resource's is, and the deployed
software's version ``software_version`` (the columns were ``revision`` and ``version``); the
outbox keeps each event's sequence (platform revision 2).

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
    # Renames in place (ALTER TABLE ... RENAME COLUMN on SQLite too): no table copy. The
    # software's column moves first, freeing the name ``version`` for the counter.
    op.alter_column("deployment", "version", new_column_name="software_version")
    op.alter_column("deployment", "revision", new_column_name="version")


def downgrade() -> None:
    op.alter_column("deployment", "version", new_column_name="revision")
    op.alter_column("deployment", "software_version", new_column_name="version")
    drop_outbox_sequence()
