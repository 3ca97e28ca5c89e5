"""Dead letters people can work, and the relay's marks of what the broker acknowledged
(platform revision 3).

Revision ID: 0003
Revises: 0002
"""

from tandem.migrations import add_dead_letters_and_relay_marks, drop_dead_letters_and_relay_marks

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_dead_letters_and_relay_marks()


def downgrade() -> None:
    drop_dead_letters_and_relay_marks()
