"""Registry tables: reference regions, people, and data-correction requests from complaints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import TimestampMixin, make_metadata
from shared.idempotency import idempotency_table
from shared.jobs import job_table
from shared.outbox import outbox_table

metadata = make_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
idempotency_keys = idempotency_table(metadata)
jobs = job_table(metadata)


class Base(DeclarativeBase):
    metadata = metadata


class Region(Base):
    """Kemendagri region: province (2 digits), regency (4), district (6), village (10)."""

    __tablename__ = "region"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$'", name="code_format"),
        CheckConstraint("level BETWEEN 1 AND 4", name="level_range"),
    )

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    name: Mapped[str] = mapped_column(Text)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# What DTSEN records of a house: the conditions programmes target on (RTLH, PKH, sanitation...).
FLOOR = ("earth", "bamboo", "wood", "cement", "ceramic", "other")
WALL = ("bamboo", "wood", "plaster", "brick", "other")
ROOF = ("thatch", "zinc", "asbestos", "tile", "concrete", "other")
WATER = ("unprotected", "protected_well", "rain", "piped", "bottled", "other")
SANITATION = ("none", "shared", "private")
ELECTRICITY = ("none", "non_pln", "pln_450", "pln_900", "pln_over_900")
RELATIONSHIPS = (
    "head",
    "spouse",
    "child",
    "child_in_law",
    "grandchild",
    "parent",
    "in_law",
    "other",
)
STATUSES = ("alive", "deceased", "moved")
DISABILITIES = ("none", "physical", "sensory", "intellectual", "mental", "multiple")
EDUCATION = ("none", "sd", "smp", "sma", "diploma", "bachelor", "postgraduate")


class Household(TimestampMixin, Base):
    """A family card (KK): the unit DTSEN ranks into deciles."""

    __tablename__ = "household"
    __table_args__ = (
        CheckConstraint("kk ~ '^[0-9]{16}$'", name="kk_format"),
        CheckConstraint("length(village_code) = 10", name="village_level"),
        CheckConstraint("decile IS NULL OR decile BETWEEN 1 AND 10", name="decile_range"),
        CheckConstraint(_in("floor", FLOOR), name="floor_values"),
        CheckConstraint(_in("wall", WALL), name="wall_values"),
        CheckConstraint(_in("roof", ROOF), name="roof_values"),
        CheckConstraint(_in("water", WATER), name="water_values"),
        CheckConstraint(_in("sanitation", SANITATION), name="sanitation_values"),
        CheckConstraint(_in("electricity", ELECTRICITY), name="electricity_values"),
        CheckConstraint("status IN ('active', 'dissolved')", name="status_values"),
        CheckConstraint("length(address) <= 500", name="address_length"),
        Index("ix_household_village_code_decile", "village_code", "decile"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kk: Mapped[str] = mapped_column(String(16), unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    address: Mapped[str] = mapped_column(Text, default="", server_default="")
    decile: Mapped[int | None] = mapped_column(SmallInteger)
    floor: Mapped[str] = mapped_column(String(20), default="other", server_default="other")
    wall: Mapped[str] = mapped_column(String(20), default="other", server_default="other")
    roof: Mapped[str] = mapped_column(String(20), default="other", server_default="other")
    water: Mapped[str] = mapped_column(String(20), default="other", server_default="other")
    sanitation: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    electricity: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    house_fit: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    status: Mapped[str] = mapped_column(String(10), default="active", server_default="active")
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))


class Person(TimestampMixin, Base):
    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint("nik ~ '^[0-9]{16}$'", name="nik_format"),
        CheckConstraint("sex IN ('M', 'F')", name="sex_values"),
        CheckConstraint(_in("status", STATUSES), name="status_values"),
        CheckConstraint(_in("relationship", RELATIONSHIPS), name="relationship_values"),
        CheckConstraint(_in("disability", DISABILITIES), name="disability_values"),
        CheckConstraint(_in("education", EDUCATION), name="education_values"),
        CheckConstraint("length(full_name) BETWEEN 1 AND 200", name="full_name_length"),
        CheckConstraint("length(occupation) <= 100", name="occupation_length"),
        CheckConstraint(
            "(status = 'deceased') = (death_date IS NOT NULL)", name="death_date_iff_deceased"
        ),
        CheckConstraint("death_date IS NULL OR death_date >= birth_date", name="death_after_birth"),
        CheckConstraint("length(village_code) = 10", name="village_level"),
        # One living head per family card.
        Index(
            "uq_person_household_head",
            "household_id",
            unique=True,
            postgresql_where=text("relationship = 'head' AND status = 'alive'"),
        ),
        Index(
            "ix_person_full_name_trgm",
            "full_name",
            postgresql_using="gin",
            postgresql_ops={"full_name": "gin_trgm_ops"},
        ),
        Index("ix_person_village_code_id", "village_code", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    nik: Mapped[str] = mapped_column(String(16), unique=True)
    full_name: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(String(1))
    village_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    household_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("household.id"), index=True)
    relationship: Mapped[str] = mapped_column(String(20), default="other", server_default="other")
    status: Mapped[str] = mapped_column(String(10), default="alive", server_default="alive")
    death_date: Mapped[date | None]
    disability: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    education: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    occupation: Mapped[str] = mapped_column(Text, default="", server_default="")
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))


class PersonVersion(Base):
    """Every version of a person, kept by a statement-level trigger (as-of reads, audit)."""

    __tablename__ = "person_version"

    person_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)


class HouseholdVersion(Base):
    __tablename__ = "household_version"

    household_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)


class CorrectionRequest(TimestampMixin, Base):
    """A complaint that asks the registry to correct a person's data (from complaints events)."""

    __tablename__ = "correction_request"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    complaint_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")


# BPS reconciliation imports (registry.reconciliation; format and semantics in RECONCILIATION.md).
IMPORT_MODES = ("delta", "snapshot")
IMPORT_STATUSES = ("queued", "running", "completed", "failed")


class ImportBatch(TimestampMixin, Base):
    """One DTSEN snapshot or delta file and what importing it did; counters follow each batch."""

    __tablename__ = "import_batch"
    __table_args__ = (
        CheckConstraint(_in("mode", IMPORT_MODES), name="mode_values"),
        CheckConstraint(_in("status", IMPORT_STATUSES), name="status_values"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_format"),
        Index("ix_import_batch_created_by_created_at", "created_by", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    filename: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    mode: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    created_by: Mapped[str] = mapped_column(Text, comment="agency of the token (or the CLI's)")
    total_rows: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    valid_rows: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    invalid_rows: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    changed_rows: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    unchanged_rows: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    moved_out: Mapped[int] = mapped_column(
        default=0, server_default=text("0"), comment="snapshot: members missing from their KK"
    )
    events_emitted: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    event_counts: Mapped[dict[str, int]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    batches_total: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    batches_failed: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    failure: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ImportRowError(Base):
    """A row of an import that was not applied: its line, the field and why."""

    __tablename__ = "import_error"
    __table_args__ = (Index("ix_import_error_batch_id_line", "batch_id", "line"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    batch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("import_batch.id", ondelete="CASCADE"))
    line: Mapped[int]
    field: Mapped[str] = mapped_column(Text, default="", server_default="")
    reason: Mapped[str] = mapped_column(Text)
