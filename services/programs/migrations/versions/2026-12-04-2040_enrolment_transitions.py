"""enrolment transitions

Every status change of an enrolment is a row of enrolment_transition (why, by whom, when); the
statuses grow to pending, active, suspended, graduated, terminated (exited stays readable).
Enrolments that exist already get the transition that began them.

Revision ID: enrolment_transitions
Revises: enrolment_decisions
Create Date: 2026-12-04 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "enrolment_transitions"
down_revision: str | None = "enrolment_decisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_enrolment_status_values"), "enrolment", type_="check")
    op.create_check_constraint(
        op.f("ck_enrolment_status_values"),
        "enrolment",
        "status IN ('pending', 'active', 'suspended', 'graduated', 'terminated', 'exited')",
    )
    op.create_table(
        "enrolment_transition",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("enrolment_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=10), nullable=True),
        sa.Column("to_status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["enrolment_id"],
            ["enrolment.id"],
            name=op.f("fk_enrolment_transition_enrolment_id_enrolment"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment_transition")),
    )
    op.create_index(
        op.f("ix_enrolment_transition_enrolment_id"),
        "enrolment_transition",
        ["enrolment_id"],
        unique=False,
    )
    op.execute(
        "INSERT INTO enrolment_transition (enrolment_id, from_status, to_status, reason, actor, at) "
        "SELECT id, NULL, status, 'enrolled before transitions were recorded', "
        "enrolled_by_agency, created_at FROM enrolment"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_enrolment_transition_enrolment_id"), table_name="enrolment_transition")
    op.drop_table("enrolment_transition")
    op.drop_constraint(op.f("ck_enrolment_status_values"), "enrolment", type_="check")
    op.execute(
        "UPDATE enrolment SET status = 'exited' WHERE status IN ('pending', 'suspended', 'terminated')"
    )
    op.create_check_constraint(
        op.f("ck_enrolment_status_values"),
        "enrolment",
        "status IN ('active', 'graduated', 'exited')",
    )
