"""household facts

The read model of registry households (``household_fact``, fed by ``registry.household.v1``) and
the person facts eligibility needs beside them: the person's family card, relationship to its
head and disability. Person facts stored before this revision get the registry's own defaults
(no card, ``other``, ``none``) until the person's next event; ``python -m programs
rebuild-facts`` fills them all from the registry's topics at once.

Revision ID: household_facts
Revises: dc1a866c70bd
Create Date: 2026-12-04 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "household_facts"
down_revision: str | None = "dc1a866c70bd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "household_fact",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("village_code", sa.String(length=10), nullable=False),
        sa.Column("decile", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("house_fit", sa.Boolean(), nullable=False),
        sa.Column("floor", sa.String(length=20), nullable=False),
        sa.Column("wall", sa.String(length=20), nullable=False),
        sa.Column("roof", sa.String(length=20), nullable=False),
        sa.Column("water", sa.String(length=20), nullable=False),
        sa.Column("sanitation", sa.String(length=20), nullable=False),
        sa.Column("electricity", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_fact")),
    )
    op.create_index(
        op.f("ix_household_fact_village_code"), "household_fact", ["village_code"], unique=False
    )
    op.add_column("person_fact", sa.Column("household_id", sa.Uuid(), nullable=True))
    op.add_column(
        "person_fact",
        sa.Column("relationship", sa.String(length=20), server_default="other", nullable=False),
    )
    op.add_column(
        "person_fact",
        sa.Column("disability", sa.String(length=20), server_default="none", nullable=False),
    )
    op.create_index(
        op.f("ix_person_fact_household_id"), "person_fact", ["household_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_person_fact_household_id"), table_name="person_fact")
    op.drop_column("person_fact", "disability")
    op.drop_column("person_fact", "relationship")
    op.drop_column("person_fact", "household_id")
    op.drop_index(op.f("ix_household_fact_village_code"), table_name="household_fact")
    op.drop_table("household_fact")
