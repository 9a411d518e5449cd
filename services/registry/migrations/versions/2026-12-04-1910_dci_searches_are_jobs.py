"""dci searches are jobs

An acknowledged async search is answered by a job of kind ``dci.search`` (shared.jobs) instead
of a worker polling for pending transactions: searches still pending get their job, and the
index that poll used goes.

Revision ID: dci_searches_are_jobs
Revises: durable_jobs
Create Date: 2026-12-04 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dci_searches_are_jobs"
down_revision: str | None = "durable_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO job (kind, key, run_at) "
        "SELECT 'dci.search', id::text, created_at FROM dci_transactions "
        "WHERE status = 'pdng' AND txn_type = 'search' "
        "ON CONFLICT (kind, key) DO NOTHING"
    )
    op.drop_index("ix_dci_transactions_pending", table_name="dci_transactions")


def downgrade() -> None:
    op.create_index(
        "ix_dci_transactions_pending",
        "dci_transactions",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pdng'"),
    )
    op.execute("DELETE FROM job WHERE kind = 'dci.search'")
