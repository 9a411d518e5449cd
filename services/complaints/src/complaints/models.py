"""Complaints tables: complaints (pengaduan) from every intake channel."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from complaints.events import CATEGORIES, CHANNELS
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

STATUSES = ("received", "assigned", "resolved", "escalated", "closed")
OPEN_STATUSES = ("received", "assigned", "escalated")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = metadata


class Complaint(TimestampMixin, Base):
    """A complaint, due a first response by ``due_at`` (LAPOR! service level)."""

    __tablename__ = "complaint"
    __table_args__ = (
        CheckConstraint(_in("channel", CHANNELS), name="channel_values"),
        CheckConstraint(_in("category", CATEGORIES), name="category_values"),
        CheckConstraint(_in("status", STATUSES), name="status_values"),
        CheckConstraint(
            "region_code ~ '^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$'", name="region_code_format"
        ),
        CheckConstraint("length(summary) BETWEEN 1 AND 2000", name="summary_length"),
        CheckConstraint("length(filed_by_agency) BETWEEN 1 AND 100", name="filed_by_agency_length"),
        CheckConstraint("due_at > created_at", name="due_after_created"),
        # Open complaints by deadline: what escalation and the "late" monitoring scan.
        Index(
            "ix_complaint_open_due_at",
            "due_at",
            postgresql_where=text(_in("status", OPEN_STATUSES)),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    channel: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    person_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="received", server_default="received")
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    filed_by_agency: Mapped[str] = mapped_column(String(100))
