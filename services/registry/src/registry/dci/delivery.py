"""Outbound SPDCI callbacks (on-search, on-subscribe, on-unsubscribe, txn-on-status, notify).

Outbox style: :func:`enqueue_callback` writes a ``dci_deliveries`` row in the same transaction as
the work it reports, so a rolled-back search sends nothing and a committed one is never lost.
:func:`deliver_due` (run by the DCI worker) leases due rows, checks the URL against the
receiver's allow-list *again* (a changed list stops queued callbacks; a refused URL is never
contacted), signs the envelope with the registry's key, POSTs it with httpx, and logs every
attempt in ``dci_delivery_attempts``. Failures retry with exponential backoff (never shorter
than the nominal delay, up to a quarter longer so retries of many callbacks spread out) until
``dci_callback_max_attempts``, then the delivery is ``failed``.

The header's ``message_id`` is the delivery id on every attempt, so a receiver that got a
callback whose ACK was lost can recognise the retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from registry.dci import envelope as envelopes
from registry.dci.models import DciDelivery, DciDeliveryAttempt
from registry.dci.senders import get_active_sender, url_allowed
from registry.dci.signature import RegistrySigner
from shared.db import session_scope

__all__ = ["DeliveryPolicy", "backoff_delay", "deliver_due", "enqueue_callback"]

log = logging.getLogger("registry.dci.delivery")

# Which list in a callback message counts its requests (header.total_count).
_ITEM_LISTS = (
    "search_response",
    "subscribe_response",
    "notify_event",
    "subscription_status",
)


@dataclass(frozen=True)
class DeliveryPolicy:
    timeout_seconds: float
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    batch_size: int = 20


def backoff_delay(attempt: int, *, base: float, cap: float) -> float:
    """Nominal wait after failed attempt number ``attempt`` (1-based): base, 2 base, 4 base..."""
    return float(min(cap, base * 2 ** (attempt - 1)))


async def enqueue_callback(
    session: AsyncSession,
    *,
    sender_id: str,
    url: str,
    action: str,
    message: dict[str, Any],
    transaction_id: str,
    subscription_code: str | None = None,
    correlation_id: str | None = None,
    header: dict[str, Any] | None = None,
) -> uuid.UUID:
    """Queue a signed callback to ``url`` of sender ``sender_id`` (sent after commit).

    ``header`` adds callback-header fields (``status``, ``status_reason_code``...) to the ones
    the worker fills in (message id, time, sender, receiver, counts).
    """
    delivery_id = uuid.uuid4()
    session.add(
        DciDelivery(
            id=delivery_id,
            sender_id=sender_id,
            url=url,
            action=action,
            header=header,
            message=message,
            transaction_id=transaction_id,
            correlation_id=correlation_id,
            subscription_code=subscription_code,
        )
    )
    await session.flush()
    return delivery_id


def _item_count(message: dict[str, Any]) -> int:
    for key in _ITEM_LISTS:
        items = message.get(key)
        if isinstance(items, list):
            return len(items)
    return 1


def build_envelope(delivery: DciDelivery, signer: RegistrySigner) -> dict[str, Any]:
    count = _item_count(delivery.message)
    header = envelopes.callback_header(
        action=delivery.action,
        registry_id=signer.sender_id,
        receiver_id=delivery.sender_id,
        total_count=count,
        completed_count=count,
    )
    header["message_id"] = str(delivery.id)
    header.update(delivery.header or {})
    return signer.envelope(header, delivery.message)


async def _lease_due(session: AsyncSession, policy: DeliveryPolicy) -> list[DciDelivery]:
    """Due deliveries, pushed into the future for the length of one try so no other worker
    takes them meanwhile (the HTTP call happens outside any transaction)."""
    due = (
        select(DciDelivery.id)
        .where(DciDelivery.status == "pending", DciDelivery.next_attempt_at <= text("now()"))
        .order_by(DciDelivery.next_attempt_at)
        .limit(policy.batch_size)
        .with_for_update(skip_locked=True)
    )
    lease = timedelta(seconds=policy.timeout_seconds + 30)
    rows = await session.scalars(
        update(DciDelivery)
        .where(DciDelivery.id.in_(due.scalar_subquery()))
        .values(
            attempts=DciDelivery.attempts + 1,
            next_attempt_at=func.now() + lease,
        )
        .returning(DciDelivery)
    )
    return list(rows)


@dataclass(frozen=True)
class _Outcome:
    outcome: str  # delivered, retry, failed, refused
    http_status: int | None = None
    error: str | None = None


async def _post(
    client: httpx.AsyncClient, delivery: DciDelivery, signer: RegistrySigner
) -> _Outcome:
    try:
        response = await client.post(delivery.url, json=build_envelope(delivery, signer))
    except httpx.HTTPError as exc:
        return _Outcome("retry", error=f"{type(exc).__name__}: {exc}"[:999])
    if not response.is_success:
        return _Outcome("retry", response.status_code, f"HTTP {response.status_code}")
    try:
        ack_status = response.json().get("message", {}).get("ack_status")
    except (ValueError, AttributeError):
        ack_status = None
    if ack_status == "ERR":
        reason = response.text[:500]
        return _Outcome("retry", response.status_code, f"receiver answered ERR: {reason}")
    return _Outcome("delivered", response.status_code)


async def _attempt(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    delivery: DciDelivery,
    signer: RegistrySigner,
    policy: DeliveryPolicy,
) -> None:
    async with session_scope(sessionmaker) as session:
        sender = await get_active_sender(session, delivery.sender_id)
    if sender is None:
        outcome = _Outcome("refused", error=f"sender {delivery.sender_id!r} is not active")
    elif not url_allowed(sender, delivery.url):
        outcome = _Outcome("refused", error="the URL is outside the sender's allow-list")
    else:
        outcome = await _post(client, delivery, signer)
    if outcome.outcome == "retry" and delivery.attempts >= policy.max_attempts:
        outcome = _Outcome("failed", outcome.http_status, outcome.error)
    # Times come from the database clock of the transaction that logs the attempt, so the
    # next try is never earlier than this attempt's logged time plus the delay.
    values: dict[str, Any] = {"last_error": outcome.error}
    if outcome.outcome == "delivered":
        values.update(status="delivered", finished_at=func.now())
    elif outcome.outcome in ("failed", "refused"):
        values.update(status="failed", finished_at=func.now())
    else:
        delay = backoff_delay(
            delivery.attempts, base=policy.backoff_seconds, cap=policy.backoff_max_seconds
        )
        delay *= 1 + random.random() / 4  # jitter spreads the retries of many callbacks
        values["next_attempt_at"] = func.now() + timedelta(seconds=delay)
    async with session_scope(sessionmaker) as session:
        await session.execute(
            update(DciDelivery).where(DciDelivery.id == delivery.id).values(values)
        )
        session.add(
            DciDeliveryAttempt(
                delivery_id=delivery.id,
                attempt=delivery.attempts,
                message_id=str(delivery.id),
                http_status=outcome.http_status,
                outcome=outcome.outcome,
                error=outcome.error,
            )
        )
    log.info(
        "registry.dci.callback_attempted",
        extra={
            "delivery_id": str(delivery.id),
            "action": delivery.action,
            "attempt": delivery.attempts,
            "outcome": outcome.outcome,
            "http_status": outcome.http_status,
        },
    )


async def deliver_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    signer: RegistrySigner,
    policy: DeliveryPolicy,
) -> int:
    """Try every due delivery once (concurrently); returns how many were tried."""
    async with session_scope(sessionmaker) as session:
        leased = await _lease_due(session, policy)
    await asyncio.gather(
        *(_attempt(sessionmaker, client, delivery, signer, policy) for delivery in leased)
    )
    return len(leased)
