"""Programs tables: enrolments, and read models of registry and referral facts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ColumnElement,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    or_,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Mapped, mapped_column

from shared.audit import audit_table
from shared.auth import Caller
from shared.consumer import inbox_table
from shared.db import TimestampMixin, make_metadata
from shared.idempotency import idempotency_table
from shared.outbox import outbox_table

metadata = make_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
idempotency_keys = idempotency_table(metadata)

PROGRAMMES = ("PKH", "BPNT", "BLT", "PBI_JK", "SEKOLAH_RAKYAT")


def in_callers_regions(
    column: ColumnElement[str] | InstrumentedAttribute[str], caller: Caller
) -> ColumnElement[bool]:
    """The region wall as SQL: ``column`` (a region code) lies inside the caller's regions
    (true for a national caller)."""
    if caller.is_national:
        return true()
    return or_(*(column.startswith(region) for region in caller.regions))


class Base(DeclarativeBase):
    metadata = metadata


class PersonFact(Base):
    """What programs knows of a registry person, fed only by `registry.person.v1` events."""

    __tablename__ = "person_fact"

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The family card (KK) the person is on; NULL for a person on none, and for facts stored
    # before this column until the person's next event (or ``python -m programs rebuild-facts``).
    household_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    village_code: Mapped[str] = mapped_column(String(10), index=True)
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(String(1))
    status: Mapped[str] = mapped_column(String(10))
    # Relationship to the head of the card (head, spouse, child, parent, other) and disability,
    # as the registry names them (its own columns are String(20) with CHECKed values).
    relationship: Mapped[str] = mapped_column(String(20), server_default="other")
    disability: Mapped[str] = mapped_column(String(20), server_default="none")
    # The registry's row version this fact reflects: an event with a version at or below it is
    # ignored, so an older event never overwrites a newer fact, whatever the clocks say. NULL
    # for a fact from an event without version (an older producer, or a row from before this
    # column); such facts fall back to ordering by ``as_of``.
    version: Mapped[int | None]
    # Time of the registry event last applied (the producer's clock: compared only between
    # facts and events that both lack a version).
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HouseholdFact(Base):
    """What programs knows of a registry family card (KK), fed only by `registry.household.v1`
    events: the targeting facts eligibility rules read (decile, housing conditions)."""

    __tablename__ = "household_fact"

    household_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    village_code: Mapped[str] = mapped_column(String(10), index=True)
    # DTSEN welfare decile, 1 = poorest 10 %; NULL: not ranked by BPS (yet).
    decile: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(10))  # active, dissolved (merged into another)
    # House fit to live in; False is an RTLH (rumah tidak layak huni) candidate.
    house_fit: Mapped[bool]
    floor: Mapped[str] = mapped_column(String(20))
    wall: Mapped[str] = mapped_column(String(20))
    roof: Mapped[str] = mapped_column(String(20))
    water: Mapped[str] = mapped_column(String(20))
    sanitation: Mapped[str] = mapped_column(String(20))
    electricity: Mapped[str] = mapped_column(String(20))
    # The registry's row version: an event at or below it changes nothing (every household
    # event carries one; the registry's contract reads an absent one as 1).
    version: Mapped[int]
    # Time of the registry event last applied.
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReferralFact(Base):
    """Referrals made for a person, fed by `referrals.referral.v1` (coordination monitoring)."""

    __tablename__ = "referral_fact"

    referral_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    service_type: Mapped[str] = mapped_column(String(50))
    region_code: Mapped[str] = mapped_column(String(10))
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# pending -> active -> suspended -> graduated / terminated; exited: an exit recorded before
# the transitions were (kept readable, never entered again).
ENROLMENT_STATUSES = ("pending", "active", "suspended", "graduated", "terminated", "exited")


class Enrolment(TimestampMixin, Base):
    """A person, or a family card through the person who applied for it, in a programme: the
    decision it was admitted under (the rule version and its explanation) stays with it."""

    __tablename__ = "enrolment"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(s) for s in ENROLMENT_STATUSES)})", name="status_values"
        ),
        CheckConstraint("unit IN ('person', 'household')", name="unit_values"),
        CheckConstraint(
            "unit = 'person' OR household_id IS NOT NULL", name="household_unit_has_household"
        ),
        # One active enrolment per person, or per card for a household programme: the database
        # holds the line however many requests race.
        Index(
            "uq_enrolment_active_person_programme",
            "person_id",
            "programme",
            unique=True,
            postgresql_where=text("status = 'active' AND unit = 'person'"),
        ),
        Index(
            "uq_enrolment_active_household_programme",
            "household_id",
            "programme",
            unique=True,
            postgresql_where=text("status = 'active' AND unit = 'household'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    programme: Mapped[str] = mapped_column(ForeignKey("programme.code"))
    # The programme's unit when enrolled (person or household), kept for the unique indexes.
    unit: Mapped[str] = mapped_column(String(10), server_default="person")
    household_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    enrolled_by_agency: Mapped[str] = mapped_column(String(100))
    # The rule version and the explanation of the decision that admitted it (NULL for the
    # enrolments made before decisions were recorded).
    rule_version: Mapped[int | None]
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class EnrolmentTransition(Base):
    """One change of an enrolment's status, with why, by whom and when: the history, written by
    the same statement as the change (never updated)."""

    __tablename__ = "enrolment_transition"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=False), primary_key=True)
    enrolment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("enrolment.id"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(Text)
    # The agency that changed it, or the registry event that did ("registry:<event id>").
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))


class Programme(TimestampMixin, Base):
    """A programme of the catalogue: who runs it, who it is for, what it gives, and which
    version of its eligibility rule is in force (:mod:`programs.catalogue`)."""

    __tablename__ = "programme"
    __table_args__ = (
        CheckConstraint("code ~ '^[A-Z][A-Z0-9_]{1,29}$'", name="code_format"),
        CheckConstraint("unit IN ('person', 'household')", name="unit_values"),
        CheckConstraint(
            "benefit_kind IN ('cash', 'premium', 'in_kind', 'membership')",
            name="benefit_kind_values",
        ),
        CheckConstraint(
            "benefit_period IN ('once', 'meal', 'month', 'quarter', 'year')",
            name="benefit_period_values",
        ),
        CheckConstraint("benefit_amount >= 0", name="benefit_amount_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    agency: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(10))
    benefit_kind: Mapped[str] = mapped_column(String(20))
    benefit_amount: Mapped[int | None] = mapped_column(BigInteger)
    benefit_period: Mapped[str | None] = mapped_column(String(10))
    benefit_description: Mapped[str] = mapped_column(Text, default="", server_default="")
    source: Mapped[str] = mapped_column(Text, default="", server_default="")
    rule_version: Mapped[int]


class EligibilityRule(Base):
    """One version of a programme's rule; a change is a new row, never an update."""

    __tablename__ = "eligibility_rule"

    programme: Mapped[str] = mapped_column(ForeignKey("programme.code"), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[dict[str, Any]] = mapped_column(JSONB)
    note: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
