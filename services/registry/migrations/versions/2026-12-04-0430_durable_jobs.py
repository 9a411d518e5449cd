"""durable jobs

The service's job table (shared.jobs): SPDCI callbacks become jobs, so a delivery no longer
keeps its own schedule (next_attempt_at and its index go; the job's run_at says when).

Revision ID: durable_jobs
Revises: dci_sender_rate_limit
Create Date: 2026-12-04 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "durable_jobs"
down_revision: str | None = "dci_sender_rate_limit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.Text(), server_default=sa.text("'pending'"), nullable=False),
        sa.Column(
            "run_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("traceparent", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled')",
            name=op.f("ck_job_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("kind", "key", name=op.f("uq_job_kind")),
    )
    op.create_index(
        "ix_job_due",
        "job",
        ["run_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    # Deliveries still waiting get their job, due when they were.
    op.execute(
        "INSERT INTO job (kind, key, run_at, attempts) "
        "SELECT 'dci.callback', id::text, next_attempt_at, attempts FROM dci_deliveries "
        "WHERE status = 'pending'"
    )
    op.drop_index("ix_dci_deliveries_due", table_name="dci_deliveries")
    op.drop_column("dci_deliveries", "next_attempt_at")


def downgrade() -> None:
    op.add_column(
        "dci_deliveries",
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        "UPDATE dci_deliveries d SET next_attempt_at = j.run_at FROM job j "
        "WHERE j.kind = 'dci.callback' AND j.key = d.id::text"
    )
    op.create_index(
        "ix_dci_deliveries_due",
        "dci_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index(
        "ix_job_due", table_name="job", postgresql_where=sa.text("status IN ('pending', 'running')")
    )
    op.drop_table("job")
