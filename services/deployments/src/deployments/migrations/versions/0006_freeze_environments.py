"""The environments a freeze covers, in the freeze projection.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("freeze_view") as batch:
        batch.add_column(sa.Column("environments", JSONType, nullable=False,
                                   server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("freeze_view") as batch:
        batch.drop_column("environments")
