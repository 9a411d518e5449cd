"""Registry tables: reference regions, people, and data-correction requests from complaints."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.audit import audit_table
from shared.consumer import inbox_table
from shared.db import TimestampMixin, make_metadata
from shared.idempotency import idempotency_table
from shared.outbox import outbox_table

metadata = make_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
audit_log = audit_table(metadata)
idempotency_keys = idempotency_table(metadata)


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


class Person(TimestampMixin, Base):
    __tablename__ = "person"
    __table_args__ = (
        CheckConstraint("nik ~ '^[0-9]{16}$'", name="nik_format"),
        CheckConstraint("sex IN ('M', 'F')", name="sex_values"),
        CheckConstraint("status IN ('alive', 'deceased', 'moved')", name="status_values"),
        CheckConstraint("length(full_name) BETWEEN 1 AND 200", name="full_name_length"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    nik: Mapped[str] = mapped_column(String(16), unique=True)
    full_name: Mapped[str] = mapped_column(Text)
    birth_date: Mapped[date]
    sex: Mapped[str] = mapped_column(String(1))
    village_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    status: Mapped[str] = mapped_column(String(10), default="alive", server_default="alive")


class CorrectionRequest(TimestampMixin, Base):
    """A complaint that asks the registry to correct a person's data (from complaints events)."""

    __tablename__ = "correction_request"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    complaint_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("person.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
