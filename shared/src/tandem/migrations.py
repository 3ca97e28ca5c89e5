"""Alembic support shared by every service: the async env, the platform tables, ``upgrade``.

Each service keeps its migrations in its package (``<service>/migrations``); its ``env.py``
calls :func:`run_env` and its first revision calls :func:`create_platform_tables`.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

from tandem.db import JSONType, UTCDateTime
from tandem.settings import PlatformSettings, ServiceSettings, private_file

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def create_platform_tables(number_prefix: str) -> None:
    """Create the outbox, inbox, idempotency and number tables (a service's first revision)."""
    op.create_table(
        "outbox",
        sa.Column("seq", _BigId, primary_key=True, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("aggregate_type", sa.String(64), nullable=False),
        sa.Column("aggregate_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    # Unpublished rows are what the relay reads; a partial index keeps that scan small.
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["seq"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("event_type", sa.String(128), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("processed_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "subject_cursor",
        sa.Column("consumer", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
    )
    op.create_table(
        "idempotency_key",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("actor", sa.String(255), primary_key=True),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", JSONType, nullable=False),
        sa.Column("location", sa.String(512), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "number_sequence",
        sa.Column("prefix", sa.String(8), primary_key=True),
        sa.Column("last_value", sa.Integer(), nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "number_sequence", sa.column("prefix", sa.String), sa.column("last_value", sa.Integer)
        ),
        [{"prefix": number_prefix, "last_value": 0}],
    )


def add_outbox_sequence() -> None:
    """Platform revision 2: the outbox keeps each event's ``sequence``, unique per aggregate
    (the backstop of the aggregate locking policy, ``tandem.aggregate``)."""
    op.add_column("outbox", sa.Column("sequence", sa.Integer(), nullable=True))
    op.create_index("uq_outbox_aggregate_sequence", "outbox", ["aggregate_id", "sequence"],
                    unique=True)


def drop_outbox_sequence() -> None:
    op.drop_index("uq_outbox_aggregate_sequence", "outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sequence")


def add_dead_letters_and_relay_marks() -> None:
    """Platform revision 3: dead letters people can work (``tandem.dead_letters``), and the
    relay's marks that tell when the broker lost what it had acknowledged (``tandem.outbox``);
    the outbox's published rows are kept (retention), so an index on ``published_at`` finds
    the old ones."""
    op.create_table(
        "dead_letter",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", _BigId, nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("headers", JSONType, nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("event_type", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(64), nullable=True),
        sa.Column("sequence", _BigId, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(255), nullable=True),
    )
    op.create_index("uq_dead_letter_origin", "dead_letter",
                    ["consumer", "topic", "partition", "offset"], unique=True)
    op.create_index("ix_dead_letter_status", "dead_letter", ["status"])
    op.create_table(
        "relay_mark",
        sa.Column("topic", sa.String(255), primary_key=True),
        sa.Column("partition", sa.Integer(), primary_key=True),
        sa.Column("offset", _BigId, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_inbox_processed_at", "inbox", ["processed_at"])


def drop_dead_letters_and_relay_marks() -> None:
    op.drop_index("ix_inbox_processed_at", "inbox")
    op.drop_table("relay_mark")
    op.drop_index("ix_dead_letter_status", "dead_letter")
    op.drop_index("uq_dead_letter_origin", "dead_letter")
    op.drop_table("dead_letter")


def add_revoked_tokens() -> None:
    """The ``revoked_token`` table (the jtis every service refuses)."""
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_revoked_token_expires_at", "revoked_token", ["expires_at"])


def drop_revoked_tokens() -> None:
    op.drop_index("ix_revoked_token_expires_at", "revoked_token")
    op.drop_table("revoked_token")


def drop_platform_tables() -> None:
    for name in ("number_sequence", "idempotency_key", "subject_cursor", "inbox", "outbox"):
        op.drop_table(name)


def run_env(target_metadata: sa.MetaData | None = None) -> None:
    """The body of a service's ``env.py``: run migrations online over the async engine."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"

    def do_run(connection: sa.Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                await conn.run_sync(do_run)
                await conn.commit()
        finally:
            await engine.dispose()

    asyncio.run(run())


def migrate_command(migrations_dir: Path, settings: ServiceSettings) -> None:
    """The body of a service's ``__main__``: ``python -m <service> migrate`` applies its
    migrations to the database its settings name."""
    if sys.argv[1:] != ["migrate"]:
        sys.exit(f"usage: python -m {settings.service} migrate")
    upgrade(migrations_dir, settings.database_url_for(PlatformSettings()))


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    """Apply a service's migrations to ``url``; safe to call from inside an event loop."""
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1]
        if path and path != ":memory:":
            private_file(Path(path))
    _in_thread(command.upgrade, migrations_dir, url, revision)


def downgrade(migrations_dir: Path, url: str, revision: str) -> None:
    """Take a service's database back to ``revision`` (``base``: empty)."""
    _in_thread(command.downgrade, migrations_dir, url, revision)


def _in_thread(step: Any, migrations_dir: Path, url: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    error: list[BaseException] = []

    def target() -> None:
        try:
            step(cfg, revision)
        except BaseException as exc:
            error.append(exc)

    # Alembic's env runs its own event loop, so it gets a thread of its own.
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if error:
        raise error[0]
