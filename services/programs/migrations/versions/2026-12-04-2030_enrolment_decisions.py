"""enrolment decisions

An enrolment names a catalogue programme (a foreign key instead of a fixed list of five codes),
records the rule version and explanation of the decision that admitted it, and for a household
programme the family card, with one active enrolment per card.

Revision ID: enrolment_decisions
Revises: programme_catalogue
Create Date: 2026-12-04 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "enrolment_decisions"
down_revision: str | None = "programme_catalogue"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE_PERSON = "status = 'active'"


def upgrade() -> None:
    op.drop_constraint(op.f("ck_enrolment_programme_values"), "enrolment", type_="check")
    op.alter_column(
        "enrolment", "programme", type_=sa.String(length=30), existing_type=sa.String(length=20)
    )
    op.create_foreign_key(
        op.f("fk_enrolment_programme_programme"), "enrolment", "programme", ["programme"], ["code"]
    )
    op.add_column(
        "enrolment",
        sa.Column("unit", sa.String(length=10), server_default="person", nullable=False),
    )
    op.add_column("enrolment", sa.Column("household_id", sa.Uuid(), nullable=True))
    op.add_column("enrolment", sa.Column("rule_version", sa.Integer(), nullable=True))
    op.add_column(
        "enrolment",
        sa.Column("decision", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_enrolment_unit_values"), "enrolment", "unit IN ('person', 'household')"
    )
    op.create_check_constraint(
        op.f("ck_enrolment_household_unit_has_household"),
        "enrolment",
        "unit = 'person' OR household_id IS NOT NULL",
    )
    op.create_index(op.f("ix_enrolment_household_id"), "enrolment", ["household_id"], unique=False)
    op.drop_index(
        "uq_enrolment_active_person_programme",
        table_name="enrolment",
        postgresql_where=sa.text(_ACTIVE_PERSON),
    )
    op.create_index(
        "uq_enrolment_active_person_programme",
        "enrolment",
        ["person_id", "programme"],
        unique=True,
        postgresql_where=sa.text("status = 'active' AND unit = 'person'"),
    )
    op.create_index(
        "uq_enrolment_active_household_programme",
        "enrolment",
        ["household_id", "programme"],
        unique=True,
        postgresql_where=sa.text("status = 'active' AND unit = 'household'"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_enrolment_active_household_programme",
        table_name="enrolment",
        postgresql_where=sa.text("status = 'active' AND unit = 'household'"),
    )
    op.drop_index(
        "uq_enrolment_active_person_programme",
        table_name="enrolment",
        postgresql_where=sa.text("status = 'active' AND unit = 'person'"),
    )
    op.create_index(
        "uq_enrolment_active_person_programme",
        "enrolment",
        ["person_id", "programme"],
        unique=True,
        postgresql_where=sa.text(_ACTIVE_PERSON),
    )
    op.drop_index(op.f("ix_enrolment_household_id"), table_name="enrolment")
    op.drop_constraint(
        op.f("ck_enrolment_household_unit_has_household"), "enrolment", type_="check"
    )
    op.drop_constraint(op.f("ck_enrolment_unit_values"), "enrolment", type_="check")
    op.drop_column("enrolment", "decision")
    op.drop_column("enrolment", "rule_version")
    op.drop_column("enrolment", "household_id")
    op.drop_column("enrolment", "unit")
    op.drop_constraint(op.f("fk_enrolment_programme_programme"), "enrolment", type_="foreignkey")
    op.alter_column(
        "enrolment", "programme", type_=sa.String(length=20), existing_type=sa.String(length=30)
    )
    op.create_check_constraint(
        op.f("ck_enrolment_programme_values"),
        "enrolment",
        "programme IN ('PKH', 'BPNT', 'BLT', 'PBI_JK', 'SEKOLAH_RAKYAT')",
    )
