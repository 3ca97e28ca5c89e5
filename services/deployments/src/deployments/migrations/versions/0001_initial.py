"""Deployments (with their gate decisions), projections of changes, freezes and incidents,
DORA facts, and the platform tables.

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
    create_platform_tables("DEP")
    op.create_table(
        "deployment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("artifact", sa.String(500), nullable=True),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("commits", JSONType, nullable=False),
        sa.Column("pipeline", JSONType, nullable=True),
        sa.Column("triggered_by", sa.String(255), nullable=False),
        sa.Column("change_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("gate_decision", sa.String(16), nullable=False),
        sa.Column("gate_reasons", JSONType, nullable=False),
        sa.Column("gate_change_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("gate_mode", sa.String(16), nullable=False),
        sa.Column("gate_decided_at", UTCDateTime(), nullable=False),
        sa.Column("gate_history", JSONType, nullable=False),
        sa.Column("change_requested", sa.Boolean(), nullable=False),
        sa.Column("rework", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_deployment_created", "deployment", ["created_at", "id"])
    op.create_index("ix_deployment_service_env", "deployment",
                    ["service", "environment", "status"])
    op.create_table(
        "change_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("planned_start", UTCDateTime(), nullable=True),
        sa.Column("planned_end", UTCDateTime(), nullable=True),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
        sa.Column("deployment_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("rejected", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "freeze_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=True),
    )
    op.create_table(
        "incident_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cause_deployment_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_incident_view_service", "incident_view",
                    ["service", "environment", "status"])
    op.create_table(
        "dora_fact",
        sa.Column("deployment_id", sa.Uuid(), primary_key=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("deployed_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("lead_times_s", JSONType, nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("failure_started_at", UTCDateTime(), nullable=True),
        sa.Column("failure_known_at", UTCDateTime(), nullable=True),
        sa.Column("recovered_at", UTCDateTime(), nullable=True),
        sa.Column("rework", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_dora_fact_finished", "dora_fact",
                    ["service", "environment", "finished_at"])
    op.create_index("ix_dora_fact_deployed", "dora_fact",
                    ["service", "environment", "deployed_at"])


def downgrade() -> None:
    for table in ("dora_fact", "incident_view", "freeze_view", "change_view", "deployment"):
        op.drop_table(table)
    drop_platform_tables()
