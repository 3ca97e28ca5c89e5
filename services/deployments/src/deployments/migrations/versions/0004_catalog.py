"""Who owns what: the template a change was recorded from (a standard change outside one never
authorizes a deploy), and the projection of the catalog's services (DORA by team).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("change_view") as batch:
        batch.add_column(sa.Column("template_id", sa.Uuid(), nullable=True))
    op.create_table(
        "service_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("owner_team", sa.String(100), nullable=True, index=True),
        sa.Column("operations_team", sa.String(100), nullable=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("service_view")
    with op.batch_alter_table("change_view") as batch:
        batch.drop_column("template_id")
