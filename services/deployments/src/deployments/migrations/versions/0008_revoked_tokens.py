"""Revoked tokens: the jtis this service refuses (platform revision, `tandem token revoke`).

Revision ID: 0008
Revises: 0007
"""

from tandem.migrations import add_revoked_tokens, drop_revoked_tokens

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_revoked_tokens()


def downgrade() -> None:
    drop_revoked_tokens()
