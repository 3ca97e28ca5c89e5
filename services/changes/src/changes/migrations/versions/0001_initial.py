"""Changes, approvals, freezes, success scores, the incident projection and platform tables.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime
from tandem.migrations import create_platform_tables, drop_platform_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables("CHG")
    op.bulk_insert(sa.table("number_sequence", sa.column("prefix", sa.String),
                            sa.column("last_value", sa.Integer)),
                   [{"prefix": "FRZ", "last_value": 0}])
    op.create_table(
        "change",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("risk", sa.String(16), nullable=False),
        sa.Column("risk_rule", sa.String(200), nullable=True),
        sa.Column("risk_set_by_requester", sa.Boolean(), nullable=False),
        sa.Column("planned_start", UTCDateTime(), nullable=True),
        sa.Column("planned_end", UTCDateTime(), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("deployment_id", sa.Uuid(), nullable=True, unique=True),
        sa.Column("requested_by", sa.String(255), nullable=False),
        sa.Column("close_code", sa.String(32), nullable=True),
        sa.Column("close_notes", sa.Text(), nullable=True),
        sa.Column("marked_unsuccessful", sa.Boolean(), nullable=False),
        sa.Column("caused_incidents", JSONType, nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("forced_by", sa.String(255), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_change_schedule", "change", ["service", "environment", "planned_start"])
    op.create_table(
        "change_approval",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("change_id", sa.Uuid(), sa.ForeignKey("change.id"), nullable=False,
                  index=True),
        sa.Column("approver", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "freeze",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True, unique=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "service_score",
        sa.Column("service", sa.String(100), primary_key=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("closed_changes", sa.Integer(), nullable=False),
        sa.Column("caused_incidents", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "incident_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for name in ("incident_view", "service_score", "freeze", "change_approval", "change"):
        op.drop_table(name)
    drop_platform_tables()
