"""Subscriptions, the delivery log, delivery lanes, the catalog's services, and the platform
tables (the notifier starts where the other services are now).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from tandem.db import JSONType, UTCDateTime
from tandem.migrations import (
    add_dead_letters_and_relay_marks,
    add_outbox_sequence,
    create_platform_tables,
    drop_dead_letters_and_relay_marks,
    drop_outbox_sequence,
    drop_platform_tables,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables("SUB")
    add_outbox_sequence()
    add_dead_letters_and_relay_marks()
    op.create_table(
        "subscription",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("types", JSONType, nullable=False),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("teams", JSONType, nullable=False),
        sa.Column("min_priority", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("disabled_reason", sa.String(500), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("team", sa.String(100), nullable=True, index=True),
        sa.Column("secret", sa.String(100), nullable=False),
    )
    op.create_index("ix_subscription_created_at", "subscription", ["created_at"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("event", JSONType, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_latency_ms", sa.Float(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_delivery_subscription_event"),
    )
    op.create_index("ix_delivery_lane", "delivery",
                    ["subscription_id", "status", "subject", "sequence"])
    op.create_index("ix_delivery_created_at", "delivery", ["created_at"])
    op.create_index("ix_delivery_status", "delivery", ["status", "subscription_id"])
    op.create_table(
        "delivery_lane",
        sa.Column("subscription_id", sa.Uuid(), primary_key=True),
        sa.Column("holder", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("failing_since", UTCDateTime(), nullable=True),
        sa.Column("last_success_at", UTCDateTime(), nullable=True),
    )
    op.create_table(
        "service_view",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, index=True),
        sa.Column("owner_team", sa.String(100), nullable=True),
        sa.Column("operations_team", sa.String(100), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("service_view")
    op.drop_table("delivery_lane")
    op.drop_index("ix_delivery_status", "delivery")
    op.drop_index("ix_delivery_created_at", "delivery")
    op.drop_index("ix_delivery_lane", "delivery")
    op.drop_table("delivery")
    op.drop_index("ix_subscription_created_at", "subscription")
    op.drop_table("subscription")
    drop_dead_letters_and_relay_marks()
    drop_outbox_sequence()
    drop_platform_tables()
