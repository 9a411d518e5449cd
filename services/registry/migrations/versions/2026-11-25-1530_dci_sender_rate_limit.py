"""dci sender rate limit

A sender's optional limit of messages a minute, and an index to count its recent messages.

Revision ID: dci_sender_rate_limit
Revises: dci_interoperability
Create Date: 2026-11-25 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dci_sender_rate_limit"
down_revision: str | None = "dci_interoperability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "dci_senders",
        sa.Column(
            "max_messages_per_minute",
            sa.Integer(),
            nullable=True,
            comment="rate limit over its recorded messages; null: no limit",
        ),
    )
    op.create_index(
        "ix_dci_messages_sender_received",
        "dci_messages",
        ["sender_id", "received_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_dci_messages_sender_received", table_name="dci_messages")
    op.drop_column("dci_senders", "max_messages_per_minute")
