"""Alembic, one history per service database.

Each service's ``migrations/env.py`` is two lines that call :func:`run_env`; the runner and the
test harness call :func:`upgrade` with a URL. Tests build their schema only through these
migrations, never with ``create_all``.

:func:`create_platform_tables` is the part of every service's first migration that builds the
library's own tables (audit log, idempotency keys, inbox, outbox) and their triggers, written
once instead of four times. It is frozen as it was on 2026-11-25: a later change to one of those
tables is a new migration in each service, never an edit here (that would rewrite history for
databases already past it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, pool
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.audit import append_only_trigger_sql
from shared.outbox import notify_trigger_sql

__all__ = [
    "alembic_config",
    "create_platform_tables",
    "drop_platform_tables",
    "run_env",
    "upgrade",
]


def alembic_config(service_root: Path, database_url: str) -> Config:
    config = Config(str(service_root / "alembic.ini"))
    config.set_main_option("script_location", str(service_root / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(service_root: Path, database_url: str, revision: str = "head") -> None:
    """Migrate a database to ``revision`` (blocking; call it in a thread from async code)."""
    command.upgrade(alembic_config(service_root, database_url), revision)


def _drop_empty_revisions(
    context: MigrationContext, revision: Any, directives: list[MigrationScript]
) -> None:
    options = getattr(context.config, "cmd_opts", None)
    if getattr(options, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops is not None and script.upgrade_ops.is_empty():
            directives[:] = []


def run_env(target_metadata: MetaData, settings_url: Callable[[], str]) -> None:
    """Body of a service's ``env.py``: online, async, with type comparison on.

    The URL is the one :func:`upgrade` set, else the service's settings (plain ``alembic``).
    """
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url") or settings_url()

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            process_revision_directives=_drop_empty_revisions,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())


def create_platform_tables(service: str) -> None:
    """In a service's first migration: audit_log (append-only), idempotency_key, inbox_event,
    outbox_event (with the NOTIFY trigger that wakes ``service``'s relay)."""
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.Text(), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("trace_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        "ix_audit_log_agency_occurred_at", "audit_log", ["agency", "occurred_at"], unique=False
    )
    op.create_index(
        "ix_audit_log_resource",
        "audit_log",
        ["resource_type", "resource_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "idempotency_key",
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("method_path", sa.Text(), nullable=False),
        sa.Column("request_sha256", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("agency", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "inbox_event",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox_event")),
    )
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_event")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_event_id")),
    )
    op.create_index(
        "ix_outbox_event_sent_at",
        "outbox_event",
        ["sent_at"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )
    op.create_index(
        "ix_outbox_event_unsent",
        "outbox_event",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_event_unsent_key",
        "outbox_event",
        ["key", "id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    for statement in [*notify_trigger_sql(service), *append_only_trigger_sql()]:
        op.execute(statement)


def drop_platform_tables() -> None:
    """The downgrade of :func:`create_platform_tables` (the triggers go with their tables)."""
    op.drop_index(
        "ix_outbox_event_unsent_key",
        table_name="outbox_event",
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.drop_index(
        "ix_outbox_event_unsent",
        table_name="outbox_event",
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.drop_index(
        "ix_outbox_event_sent_at",
        table_name="outbox_event",
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )
    op.drop_table("outbox_event")
    op.drop_table("inbox_event")
    op.drop_table("idempotency_key")
    op.drop_index("ix_audit_log_resource", table_name="audit_log")
    op.drop_index("ix_audit_log_agency_occurred_at", table_name="audit_log")
    op.drop_table("audit_log")
