"""Token revocations (aggregate ``revocation``): ``tandem token revoke``.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Revocations number from their own counter, seeded so the first two never race for it.
    op.execute("INSERT INTO number_sequence (prefix, last_value) VALUES ('REV', 0)")
    op.create_table(
        "revocation",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("jti", sa.String(255), nullable=False, unique=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_revocation_created_at", "revocation", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_revocation_created_at", "revocation")
    op.drop_table("revocation")
    op.execute("DELETE FROM number_sequence WHERE prefix = 'REV'")
