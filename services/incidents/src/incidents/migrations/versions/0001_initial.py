"""Incidents, their timeline, SLA breaches, policy, projections and the platform tables.

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

_OPEN = "dedup_key IS NOT NULL AND status IN ('new', 'acknowledged', 'in_progress', 'on_hold')"


def upgrade() -> None:
    create_platform_tables("INC")
    op.create_table(
        "incident",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("impact", sa.Integer(), nullable=False),
        sa.Column("urgency", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("priority_overridden", sa.Boolean(), nullable=False),
        sa.Column("major", sa.Boolean(), nullable=False),
        sa.Column("major_declared", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("assignment_group", sa.String(100), nullable=True),
        sa.Column("assignee", sa.String(255), nullable=True),
        sa.Column("on_hold_reason", sa.String(32), nullable=True),
        sa.Column("resolution_code", sa.String(32), nullable=True),
        sa.Column("resolution_notes", sa.Text(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(255), nullable=True),
        sa.Column("alert_count", sa.Integer(), nullable=False),
        sa.Column("opened_by_deployment_id", sa.Uuid(), nullable=True, unique=True),
        sa.Column("cause_deployment_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("cause_change_id", sa.Uuid(), nullable=True, index=True),
        sa.Column("cause_status", sa.String(16), nullable=True),
        sa.Column("cause_confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("cause_confirmed_by", sa.String(255), nullable=True),
        sa.Column("reported_by", sa.String(255), nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("mitigated_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("response_due_at", UTCDateTime(), nullable=True),
        sa.Column("resolution_due_at", UTCDateTime(), nullable=True),
        sa.Column("response_breached_at", UTCDateTime(), nullable=True),
        sa.Column("resolution_breached_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    # A monitor's dedup key names at most one open incident per service.
    op.create_index("ux_incident_open_dedup_key", "incident", ["service", "dedup_key"],
                    unique=True, sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN))
    # The SLA check scans open incidents by due time.
    op.create_index("ix_incident_response_due", "incident", ["response_due_at"])
    op.create_index("ix_incident_resolution_due", "incident", ["resolution_due_at"])
    op.create_table(
        "incident_event",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), nullable=False, index=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.UniqueConstraint("incident_id", "sequence", name="uq_incident_event_seq"),
    )
    op.create_table(
        "sla_breach",
        sa.Column("incident_id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("detected_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "incident_policy",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("priority_matrix", JSONType, nullable=False),
        sa.Column("sla_targets", JSONType, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "deployment_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("version", sa.String(200), nullable=True),
        sa.Column("change_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("deployed_at", UTCDateTime(), nullable=True, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "change_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("service", sa.String(100), nullable=False, index=True),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("implemented_at", UTCDateTime(), nullable=True, index=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("change_view", "deployment_view", "incident_policy", "sla_breach",
                  "incident_event", "incident"):
        op.drop_table(table)
    drop_platform_tables()
