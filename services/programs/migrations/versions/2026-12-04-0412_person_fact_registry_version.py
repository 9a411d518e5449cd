"""person fact registry version

The registry's row version each person fact reflects, so programs orders a person's facts by
the registry's own counter instead of by event times from two different clocks. Facts stored
before this revision have no version (NULL): the next versioned event replaces them.

Revision ID: dc1a866c70bd
Revises: 485971846072
Create Date: 2026-12-04 04:12:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dc1a866c70bd"
down_revision: str | None = "485971846072"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("person_fact", sa.Column("version", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("person_fact", "version")
