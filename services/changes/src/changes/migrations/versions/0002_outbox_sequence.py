"""The outbox keeps each event's sequence, unique per aggregate (platform revision 2).

Revision ID: 0002
Revises: 0001
"""

from tandem.migrations import add_outbox_sequence, drop_outbox_sequence

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_sequence()


def downgrade() -> None:
    drop_outbox_sequence()
