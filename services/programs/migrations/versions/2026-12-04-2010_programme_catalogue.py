"""programme catalogue

The catalogue as data: programmes and the versions of their eligibility rules, seeded with the
programmes of programs/catalogue/programmes.toml (each figure's source is cited there).

Revision ID: programme_catalogue
Revises: household_facts
Create Date: 2026-12-04 20:10:00.000000
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from programs.catalogue.seed import SEED_AGENCY, seed_rows

revision: str = "programme_catalogue"
down_revision: str | None = "household_facts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "programme",
        sa.Column("code", sa.String(length=30), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("agency", sa.String(length=100), nullable=False),
        sa.Column("unit", sa.String(length=10), nullable=False),
        sa.Column("benefit_kind", sa.String(length=20), nullable=False),
        sa.Column("benefit_amount", sa.BigInteger(), nullable=True),
        sa.Column("benefit_period", sa.String(length=10), nullable=True),
        sa.Column("benefit_description", sa.Text(), server_default="", nullable=False),
        sa.Column("source", sa.Text(), server_default="", nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "modified_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "benefit_amount >= 0", name=op.f("ck_programme_benefit_amount_not_negative")
        ),
        sa.CheckConstraint(
            "benefit_kind IN ('cash', 'premium', 'in_kind', 'membership')",
            name=op.f("ck_programme_benefit_kind_values"),
        ),
        sa.CheckConstraint(
            "benefit_period IN ('once', 'meal', 'month', 'quarter', 'year')",
            name=op.f("ck_programme_benefit_period_values"),
        ),
        sa.CheckConstraint(
            "code ~ '^[A-Z][A-Z0-9_]{1,29}$'", name=op.f("ck_programme_code_format")
        ),
        sa.CheckConstraint(
            "unit IN ('person', 'household')", name=op.f("ck_programme_unit_values")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_programme")),
    )
    op.create_table(
        "eligibility_rule",
        sa.Column("programme", sa.String(length=30), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["programme"], ["programme.code"], name=op.f("fk_eligibility_rule_programme_programme")
        ),
        sa.PrimaryKeyConstraint("programme", "version", name=op.f("pk_eligibility_rule")),
    )
    programmes = sa.table(
        "programme",
        *(
            sa.column(name)
            for name in (
                "code",
                "name",
                "agency",
                "unit",
                "benefit_kind",
                "benefit_amount",
                "benefit_period",
                "benefit_description",
                "source",
                "rule_version",
            )
        ),
    )
    rules = sa.table(
        "eligibility_rule",
        sa.column("programme"),
        sa.column("version"),
        sa.column("rule", postgresql.JSONB),
        sa.column("note"),
        sa.column("created_by"),
    )
    seed = seed_rows()
    op.bulk_insert(
        programmes,
        [
            {
                "code": row["code"],
                "name": row["name"],
                "agency": row["agency"],
                "unit": row["unit"],
                "benefit_kind": row["benefit_kind"],
                "benefit_amount": row.get("benefit_amount"),
                "benefit_period": row.get("benefit_period"),
                "benefit_description": row.get("benefit_description", ""),
                "source": row.get("source", ""),
                "rule_version": 1,
            }
            for row in seed
        ],
    )
    op.bulk_insert(
        rules,
        [
            {
                "programme": row["code"],
                "version": 1,
                # Round-tripped through JSON: the TOML reader's tables become plain objects.
                "rule": json.loads(json.dumps(row["rule"])),
                "note": "seed catalogue",
                "created_by": SEED_AGENCY,
            }
            for row in seed
        ],
    )


def downgrade() -> None:
    op.drop_table("eligibility_rule")
    op.drop_table("programme")
