"""The environments a freeze covers (issue 23), in the freeze projection.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("freeze_view") as batch:
        batch.add_column(sa.Column("environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("freeze_view") as batch:
        batch.drop_column("environments")
