"""Received messages and their transactions: message-id dedupe, and what ``txn/status`` reports.

Every accepted request message becomes one ``dci_transactions`` row (its id is the
``correlation_id`` the registry answers with) holding the normalised request and, once answered,
the answer message. ``txn/status`` looks those rows up for the asking sender only.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci.envelope import HeaderRejection, too_many_rejected
from registry.dci.models import DciMessage, DciSubscription, DciTransaction
from shared.auth import Caller

__all__ = [
    "caller_from_json",
    "caller_to_json",
    "complete",
    "complete_answered",
    "find_for_status",
    "forget_old_messages",
    "record_message",
    "seconds_until_allowed",
    "start",
]

_RATE_WINDOW = timedelta(minutes=1)


def caller_to_json(caller: Caller) -> dict[str, Any]:
    """What of a token is kept to act later with its rights (async search, notify)."""
    return {
        "subject": caller.subject,
        "agency": caller.agency,
        "scopes": sorted(caller.scopes),
        "regions": list(caller.regions),
    }


def caller_from_json(stored: dict[str, Any]) -> Caller:
    return Caller(
        subject=stored["subject"],
        agency=stored["agency"],
        scopes=frozenset(stored.get("scopes", ())),
        regions=tuple(stored.get("regions", ())),
    )


async def record_message(
    session: AsyncSession, *, sender_id: str, message_id: str, action: str
) -> bool:
    """Remember a message id; False when this sender already sent it (a replay)."""
    inserted = await session.scalar(
        insert(DciMessage)
        .values(sender_id=sender_id, message_id=message_id, action=action)
        .on_conflict_do_nothing(index_elements=[DciMessage.sender_id, DciMessage.message_id])
        .returning(DciMessage.message_id)
    )
    return inserted is not None


async def seconds_until_allowed(
    session: AsyncSession, *, sender_id: str, per_minute: int
) -> int | None:
    """None while the sender has fewer than ``per_minute`` messages recorded in the last
    minute; else the seconds until enough of them are older than a minute to send one more.

    Counted from ``dci_messages``, so replays and messages answered ``ERR`` do not count.
    Messages arriving at the same instant may pass together: the limit protects the registry
    from a runaway client, it is not an exact quota.
    """
    window = func.now() - _RATE_WINDOW
    row = (
        await session.execute(
            select(DciMessage.received_at, func.now())
            .where(DciMessage.sender_id == sender_id, DciMessage.received_at > window)
            .order_by(DciMessage.received_at.desc())
            .offset(per_minute - 1)
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    received_at, now = row
    return max(1, math.ceil((received_at + _RATE_WINDOW - now).total_seconds()))


async def forget_old_messages(session: AsyncSession, *, older_than: timedelta) -> int:
    """Drop message ids older than any signature can stay valid (replays are then refused by
    the signature's expiry instead)."""
    result = await session.execute(
        delete(DciMessage).where(DciMessage.received_at < datetime.now(UTC) - older_than)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def start(
    session: AsyncSession,
    *,
    sender_id: str,
    message_id: str,
    transaction_id: str,
    txn_type: str,
    caller: Caller,
    request: dict[str, Any],
    reference_ids: Sequence[str],
    callback_uri: str | None,
    status: str = "rcvd",
) -> DciTransaction:
    transaction = DciTransaction(
        id=uuid.uuid4(),
        sender_id=sender_id,
        message_id=message_id,
        transaction_id=transaction_id,
        txn_type=txn_type,
        status=status,
        reference_ids=list(reference_ids),
        callback_uri=callback_uri,
        caller=caller_to_json(caller),
        request=request,
    )
    session.add(transaction)
    await session.flush()
    return transaction


def complete(transaction: DciTransaction, *, status: str, response: dict[str, Any]) -> None:
    transaction.status = status
    transaction.response = response
    transaction.completed_at = datetime.now(UTC)


def complete_answered(
    transaction: DciTransaction,
    *,
    response: dict[str, Any],
    items: list[dict[str, Any]],
    max_rejected: int,
) -> HeaderRejection | None:
    """Record the answer of a processed message: ``succ``, or ``rjct`` when more than
    ``max_rejected`` of its ``items`` were rejected (the returned ``rjct.errors.too_many`` goes
    in the answer's header)."""
    rejection = too_many_rejected(items, limit=max_rejected)
    complete(transaction, status="rjct" if rejection else "succ", response=response)
    return rejection


async def find_for_status(
    session: AsyncSession,
    *,
    sender_id: str,
    txn_type: str,
    attribute_type: str,
    attribute_value: Any,
) -> list[DciTransaction] | None:
    """The sender's transactions a ``txnstatus_request`` names (None: the attribute is unusable).

    ``transaction_id`` and ``correlation_id`` take one string, ``reference_id_list`` a list of
    reference ids, ``subscription_code_list`` (older bundles) a list of subscription codes.
    """
    wanted = ("subscribe", "unsubscribe") if txn_type != "search" else ("search",)
    query = select(DciTransaction).where(
        DciTransaction.sender_id == sender_id, DciTransaction.txn_type.in_(wanted)
    )
    if attribute_type in ("transaction_id", "correlation_id"):
        if not isinstance(attribute_value, str) or not attribute_value:
            return None
        if attribute_type == "transaction_id":
            query = query.where(DciTransaction.transaction_id == attribute_value)
        else:
            try:
                query = query.where(DciTransaction.id == uuid.UUID(attribute_value))
            except ValueError:
                return []
    elif attribute_type == "reference_id_list":
        if not _strings(attribute_value):
            return None
        query = query.where(DciTransaction.reference_ids.overlap(list(attribute_value)))
    elif attribute_type == "subscription_code_list":
        if not _strings(attribute_value):
            return None
        transactions = select(DciSubscription.transaction_id).where(
            DciSubscription.sender_id == sender_id,
            DciSubscription.code.in_(list(attribute_value)),
        )
        query = query.where(
            or_(
                DciTransaction.transaction_id.in_(transactions),
                DciTransaction.request["subscription_codes"].has_any(
                    postgresql.array(list(attribute_value))
                ),
            )
        )
    else:
        return None
    return list(await session.scalars(query.order_by(DciTransaction.created_at).limit(100)))


def _strings(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 0 < len(value) <= 1000
        and all(isinstance(item, str) for item in value)
    )
