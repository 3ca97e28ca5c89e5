"""Revoked tokens: the jtis this service refuses (platform revision, `tandem token revoke`).

Revision ID: 0006
Revises: 0005
"""

from tandem.migrations import add_revoked_tokens, drop_revoked_tokens

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_revoked_tokens()


def downgrade() -> None:
    drop_revoked_tokens()
