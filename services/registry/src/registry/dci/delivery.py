"""Outbound SPDCI callbacks (on-search, on-subscribe, on-unsubscribe, txn-on-status, notify).

Outbox style: :func:`enqueue_callback` writes a ``dci_deliveries`` row and schedules its job
(:mod:`shared.jobs`, kind :data:`CALLBACK_JOB`) in the same transaction as the work it reports,
so a rolled-back search sends nothing and a committed one is never lost. The job
(:func:`callback_job`, run by the service's job runner) checks the URL against the receiver's
allow-list *again* (a changed list stops queued callbacks; a refused URL is never contacted),
signs the envelope with the registry's key, POSTs it with httpx, and logs the attempt in
``dci_delivery_attempts`` in the job's own transaction. Failures retry with the runner's
exponential backoff (never shorter than the nominal delay, up to a quarter longer so retries of
many callbacks spread out) until ``dci_callback_max_attempts``, then the delivery is ``failed``.

The header's ``message_id`` is the delivery id on every attempt, so a receiver that got a
callback whose ACK was lost can recognise the retry.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import envelope as envelopes
from registry.dci.keys import RegistryKeyring
from registry.dci.models import DciDelivery, DciDeliveryAttempt
from registry.dci.senders import get_active_sender, url_allowed
from registry.dci.signature import RegistrySigner
from registry.settings import RegistrySettings
from shared import jobs
from shared.db import session_scope
from shared.jobs import Job, JobKind, RetryLater, nominal_backoff

__all__ = ["CALLBACK_JOB", "backoff_delay", "callback_job", "enqueue_callback"]

log = logging.getLogger("registry.dci.delivery")

# Which list in a callback message counts its requests (header.total_count).
_ITEM_LISTS = (
    "search_response",
    "subscribe_response",
    "notify_event",
    "subscription_status",
)


CALLBACK_JOB = "dci.callback"
backoff_delay = nominal_backoff


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
    await jobs.schedule(session, kind=CALLBACK_JOB, key=str(delivery_id))
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


def callback_job(keyring: RegistryKeyring, settings: RegistrySettings) -> JobKind:
    """How the job runner sends callbacks, with the settings' timeout and retry policy."""
    timeout = httpx.Timeout(settings.dci_callback_timeout_seconds)

    async def send(session: AsyncSession, job: Job) -> None:
        async with session_scope(job.sessionmaker) as reading:
            delivery = await reading.get(DciDelivery, uuid.UUID(job.key))
            sender = (
                None if delivery is None else await get_active_sender(reading, delivery.sender_id)
            )
        if delivery is None or delivery.status != "pending":
            return  # already settled by an earlier attempt
        if sender is None:
            outcome = _Outcome("refused", error=f"sender {delivery.sender_id!r} is not active")
        elif not url_allowed(sender, delivery.url):
            outcome = _Outcome("refused", error="the URL is outside the sender's allow-list")
        else:
            signer = await keyring.signer(job.sessionmaker)
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
                outcome = await _post(client, delivery, signer)
        if outcome.outcome == "retry" and job.last_attempt:
            outcome = _Outcome("failed", outcome.http_status, outcome.error)
        await _record(session, delivery, job.attempt, outcome)
        if outcome.outcome == "retry":
            raise RetryLater(outcome.error)

    return JobKind(
        send,
        max_attempts=settings.dci_callback_max_attempts,
        backoff_seconds=settings.dci_callback_backoff_seconds,
        backoff_max_seconds=settings.dci_callback_backoff_max_seconds,
        lease_seconds=settings.dci_callback_timeout_seconds + 30,
    )


async def _record(
    session: AsyncSession, delivery: DciDelivery, attempt: int, outcome: _Outcome
) -> None:
    """The attempt in the delivery log and the delivery's state, in the job's transaction
    (times from its database clock, so a retry is never due before this attempt plus its
    delay)."""
    values: dict[str, Any] = {"attempts": attempt, "last_error": outcome.error}
    if outcome.outcome == "delivered":
        values.update(status="delivered", finished_at=func.now())
    elif outcome.outcome in ("failed", "refused"):
        values.update(status="failed", finished_at=func.now())
    await session.execute(update(DciDelivery).where(DciDelivery.id == delivery.id).values(values))
    session.add(
        DciDeliveryAttempt(
            delivery_id=delivery.id,
            attempt=attempt,
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
            "attempt": attempt,
            "outcome": outcome.outcome,
            "http_status": outcome.http_status,
        },
    )
