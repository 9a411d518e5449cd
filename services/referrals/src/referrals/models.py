"""Referrals tables: referrals (rujukan) of registry people to other agencies' services."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from referrals.events import SERVICE_TYPES
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

STATUSES = ("sent", "accepted", "completed", "rejected", "expired")
OPEN_STATUSES = ("sent", "accepted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = metadata


class Referral(TimestampMixin, Base):
    """A person sent to another agency's service, to be answered by ``due_at``."""

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint("region_code ~ '^[0-9]{10}$'", name="region_code_format"),
        CheckConstraint(_in("service_type", SERVICE_TYPES), name="service_type_values"),
        CheckConstraint(_in("status", STATUSES), name="status_values"),
        CheckConstraint("to_agency ~ '^[A-Z][A-Z0-9-]{1,49}$'", name="to_agency_format"),
        CheckConstraint("length(reason) BETWEEN 1 AND 2000", name="reason_length"),
        CheckConstraint(
            "length(referred_by_agency) BETWEEN 1 AND 100", name="referred_by_agency_length"
        ),
        CheckConstraint("due_at > created_at", name="due_after_created"),
        # Open referrals by deadline: what the expiry job and the "late" monitoring scan.
        Index(
            "ix_referral_open_due_at", "due_at", postgresql_where=text(_in("status", OPEN_STATUSES))
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    person_id: Mapped[uuid.UUID] = mapped_column(index=True)
    region_code: Mapped[str] = mapped_column(String(10), index=True)
    service_type: Mapped[str] = mapped_column(String(50))
    to_agency: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(10), default="sent", server_default="sent")
    referred_by_agency: Mapped[str] = mapped_column(String(100))
    # Set when the referral was opened from a complaint (complaints.complaint.filed.v1).
    complaint_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
