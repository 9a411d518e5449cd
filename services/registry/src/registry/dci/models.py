"""Tables of the SPDCI interface: senders, seen messages, transactions, subscriptions, callbacks.

They live on the registry's own ``MetaData`` (one Alembic history per service); the migration is
``dci_interoperability``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from registry.models import Base
from shared.db import TimestampMixin

__all__ = [
    "DciDelivery",
    "DciDeliveryAttempt",
    "DciMessage",
    "DciRegistryKey",
    "DciSender",
    "DciSubscription",
    "DciTransaction",
]


class DciSender(TimestampMixin, Base):
    """A partner system allowed to send SPDCI messages: its keys and where we may call back."""

    __tablename__ = "dci_senders"

    sender_id: Mapped[str] = mapped_column(Text, primary_key=True)
    agency: Mapped[str] = mapped_column(Text, comment="must equal the bearer token's agency")
    name: Mapped[str | None] = mapped_column(Text)
    public_keys: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"), comment="key id -> Ed25519 public key (PEM)"
    )
    callback_allow_list: Mapped[list[str]] = mapped_column(
        ARRAY(Text), server_default=text("'{}'"), comment="URL prefixes callbacks may go to"
    )
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    max_messages_per_minute: Mapped[int | None] = mapped_column(
        Integer, comment="rate limit over its recorded messages; null: no limit"
    )


class DciMessage(Base):
    """Message ids already received from a sender: a replayed ``message_id`` is rejected."""

    __tablename__ = "dci_messages"
    # A sender's messages of the last minute (its rate limit) without scanning its history.
    __table_args__ = (Index("ix_dci_messages_sender_received", "sender_id", "received_at"),)

    sender_id: Mapped[str] = mapped_column(Text, primary_key=True)
    message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    action: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class DciTransaction(Base):
    """One received request message and its answer: what ``txn/status`` reports.

    ``id`` is the ``correlation_id`` the registry hands back. An async search waits here with
    status ``pdng`` until its job answers it (with the stored caller's rights).
    """

    __tablename__ = "dci_transactions"
    __table_args__ = (
        CheckConstraint(
            "txn_type IN ('search', 'subscribe', 'unsubscribe', 'txn-status')",
            name="txn_type_values",
        ),
        CheckConstraint("status IN ('rcvd', 'pdng', 'succ', 'rjct')", name="status_values"),
        Index("ix_dci_transactions_sender_transaction", "sender_id", "transaction_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text)
    transaction_id: Mapped[str] = mapped_column(Text)
    txn_type: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    reference_ids: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    callback_uri: Mapped[str | None] = mapped_column(Text, comment="null for sync requests")
    caller: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="token's agency/subject/scopes")
    request: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="normalised message")
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB, comment="the answer message")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DciSubscription(Base):
    """A subscriber's standing request to be notified of registry events matching a filter."""

    __tablename__ = "dci_subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('subscribe', 'unsubscribe')", name="status_values"),
        CheckConstraint("notify_record_type IN ('Group', 'Member')", name="record_type_values"),
        Index(
            "ix_dci_subscriptions_active_event",
            "reg_event_type",
            postgresql_where=text("status = 'subscribe'"),
        ),
        Index("ix_dci_subscriptions_sender_id", "sender_id"),
    )

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    sender_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="subscribe")
    reg_type: Mapped[str | None] = mapped_column(Text)
    reg_event_type: Mapped[str] = mapped_column(Text, comment="canonical: REGISTER, DEATH...")
    filter_type: Mapped[str] = mapped_column(Text)
    filter: Mapped[Any] = mapped_column(JSONB)
    notify_record_type: Mapped[str] = mapped_column(Text)
    frequency: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    callback_uri: Mapped[str] = mapped_column(Text)
    caller: Mapped[dict[str, Any]] = mapped_column(JSONB, comment="subscriber token's rights")
    purpose: Mapped[str] = mapped_column(Text)
    locale: Mapped[str | None] = mapped_column(Text)
    transaction_id: Mapped[str] = mapped_column(Text)
    reference_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DciDelivery(Base):
    """An outbound callback (outbox style): written with the work, sent by its job."""

    __tablename__ = "dci_deliveries"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_values"),
        Index("ix_dci_deliveries_sender_transaction", "sender_id", "transaction_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    sender_id: Mapped[str] = mapped_column(Text, comment="the receiver of the callback")
    url: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text, comment="on-search, notify, txn-on-status...")
    header: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB, comment="extra callback header fields (status, reason...)"
    )
    message: Mapped[dict[str, Any]] = mapped_column(JSONB)
    transaction_id: Mapped[str] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(Text)
    subscription_code: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default="pending")
    # When it is tried next: its job's (shared.jobs) run_at.
    attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DciDeliveryAttempt(Base):
    """The delivery log: one row per try of a callback, with what the other side answered."""

    __tablename__ = "dci_delivery_attempts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dci_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(Text, comment="header.message_id of this try")
    http_status: Mapped[int | None] = mapped_column(SmallInteger)
    outcome: Mapped[str] = mapped_column(Text, comment="delivered, retry, failed, refused")
    error: Mapped[str | None] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class DciRegistryKey(Base):
    """The registry's own signing key when none is configured (``REGISTRY_DCI_SIGNING_KEY``):
    generated once and shared by every process, so answers and callbacks verify against the one
    published key. A configured key is never stored."""

    __tablename__ = "dci_registry_keys"

    key_id: Mapped[str] = mapped_column(Text, primary_key=True)
    private_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
