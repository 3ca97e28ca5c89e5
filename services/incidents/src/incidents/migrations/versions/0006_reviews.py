"""Post-incident reviews and their action items; the projection of freezes.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "freeze_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "review",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("incident_number", sa.String(16), nullable=False),
        sa.Column("incident_title", sa.String(200), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("owner_team", sa.String(100), nullable=True, index=True),
        sa.Column("participant_team", sa.String(100), nullable=True, index=True),
        sa.Column("due_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("breached_at", UTCDateTime(), nullable=True),
        sa.Column("timeline", JSONType, nullable=False),
        sa.Column("cause", JSONType, nullable=False),
        sa.Column("stream", JSONType, nullable=False),
        sa.Column("factors", JSONType, nullable=False),
    )
    op.create_table(
        "review_action",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("review_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("team", sa.String(100), nullable=True, index=True),
        sa.Column("change_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("change_number", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(255), nullable=True),
        sa.Column("closed_by_deployment_id", sa.Uuid(), nullable=True),
        sa.Column("closed_by_deployment_number", sa.String(16), nullable=True),
        sa.UniqueConstraint("review_id", "seq", name="uq_review_action_seq"),
    )


def downgrade() -> None:
    op.drop_table("review_action")
    op.drop_table("review")
    op.drop_table("freeze_view")
