"""SPDCI use cases: answer a search message, subscribe, unsubscribe, report a transaction's state.

Each takes the session and the already checked, normalised message, writes rows, and returns
the spec's answer message; the edge (route or search job) commits. Item-level problems become
items with ``status: "rjct"`` and the spec's reason code; the other items are still answered.
The data side answers one search item (:mod:`registry.dci.search`, over :mod:`registry.dci.filters`
and :mod:`registry.dci.compiler`) and checks subscription criteria (:mod:`registry.dci.criteria`);
this module does the protocol around them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import envelope as envelopes
from registry.dci import spec, transactions
from registry.dci.criteria import check_followed_people, check_subscription
from registry.dci.events import canonical_event_type
from registry.dci.filters import ItemRejected
from registry.dci.models import DciSender, DciSubscription, DciTransaction
from registry.dci.search import answer_search_item
from shared.auth import Caller

__all__ = [
    "answer_search",
    "subscribe",
    "txn_status",
    "unsubscribe",
]

SEARCH_ITEM = ("components", "schemas", "SearchRequest", "properties", "search_request", "items")
SUBSCRIBE_ITEM = (
    "components",
    "schemas",
    "SubscribeRequest",
    "properties",
    "subscribe_request",
    "items",
)
_LOCALE_LENGTH = 3


def _locale(value: Any) -> str | None:
    """ISO 639-3 locales only: the spec's pattern is ``^[a-z]{3}$``."""
    if isinstance(value, str) and len(value) == _LOCALE_LENGTH and value.isalpha():
        return value.lower()
    return None


def _rejected(item: Any, code: str, message: str) -> dict[str, Any]:
    reference_id = item.get("reference_id") if isinstance(item, dict) else None
    answer: dict[str, Any] = {
        "reference_id": reference_id if isinstance(reference_id, str) else "",
        "timestamp": envelopes.now_iso(),
        "status": "rjct",
        "status_reason_code": code,
        "status_reason_message": message[:999],
    }
    locale = _locale(item.get("locale")) if isinstance(item, dict) else None
    if locale:
        answer["locale"] = locale
    return answer


def _precheck(
    item: Any, seen: set[str], *, schema: tuple[str, ...], invalid_code: str
) -> tuple[str, str] | None:
    """The reason code and message of an item the registry cannot take, or None."""
    if not isinstance(item, dict):
        return invalid_code, "each request must be an object"
    reference_id = item.get("reference_id")
    if not isinstance(reference_id, str) or not reference_id.strip():
        return "rjct.reference_id.invalid", "reference_id must be a non-empty string"
    if reference_id in seen:
        return "rjct.reference_id.duplicate", f"reference_id {reference_id!r} repeats"
    seen.add(reference_id)
    if envelopes.parse_timestamp(item.get("timestamp")) is None:
        return "rjct.timestamp.invalid", "timestamp must be a date-time with an offset"
    problems = spec.validate_schema(item, *schema)
    if problems:
        text = "; ".join(f"{p.path}: {p.message}" for p in problems[:5])
        return invalid_code, f"does not match the spec: {text}"
    return None


async def answer_search(
    session: AsyncSession,
    *,
    caller: Caller,
    message: dict[str, Any],
    sender_id: str,
    correlation_id: str,
    timeout_ms: int,
) -> dict[str, Any]:
    """A ``SearchResponse`` for a ``SearchRequest`` message (each item read with ``caller``'s
    rights and audited under the item's consent/authorize purpose).

    Every statement from here to the end of the caller's transaction (or savepoint) may run
    ``timeout_ms``: one partner's broad query cannot hold a connection and its locks for long.
    Past it PostgreSQL cancels the statement (SQLSTATE 57014) and the caller rolls back the
    whole message: see :mod:`registry.dci.errors` (sync) and :mod:`registry.dci.scheduled`.
    """
    # set_config(..., true) is SET LOCAL with a bound value: it ends with the transaction.
    await session.execute(select(func.set_config("statement_timeout", f"{timeout_ms}ms", True)))
    transaction_id = str(message["transaction_id"])
    seen: set[str] = set()
    answers = []
    for item in message["search_request"]:
        problem = _precheck(
            item, seen, schema=SEARCH_ITEM, invalid_code="rjct.search_criteria.invalid"
        )
        if problem is not None:
            answers.append(_rejected(item, *problem))
            continue
        purpose = envelopes.item_purpose(
            item.get("search_criteria"),
            default=f"SPDCI search {transaction_id[:60]} by {sender_id[:60]}",
        )
        try:
            answers.append(
                await answer_search_item(session, caller=caller, item=item, purpose=purpose)
            )
        except ItemRejected as exc:
            answers.append(_rejected(item, exc.reason_code, exc.message))
    return {
        "transaction_id": transaction_id,
        "correlation_id": correlation_id,
        "search_response": answers,
    }


def _record_type(value: Any) -> str | None:
    """``Group`` / ``Member`` from any spelling (``spdci-extensions-dci:Member``)."""
    if not isinstance(value, str):
        return None
    name = value.rsplit(":", 1)[-1].strip().lower()
    return {"group": "Group", "member": "Member"}.get(name)


def _filter_type(criteria: dict[str, Any]) -> str:
    given = criteria.get("filter_type")
    if isinstance(given, str) and given:
        return given
    query = criteria.get("filter")
    if isinstance(query, list):
        return "predicate"
    if isinstance(query, dict) and isinstance(query.get("value"), dict):
        return "expression"
    return "idtype-value"


def subscription_info(subscription: DciSubscription) -> dict[str, Any]:
    """A ``SubscriptionInfo`` of a stored subscription (its current status)."""
    info: dict[str, Any] = {
        "version": "1.0.0",
        "code": subscription.code,
        "status": subscription.status,
        "timestamp": envelopes.iso(subscription.created_at),
        "reg_event_type": subscription.reg_event_type,
        "filter_type": subscription.filter_type,
        "filter": subscription.filter,
        "notify_record_type": subscription.notify_record_type,
    }
    if subscription.reg_type:
        info["reg_type"] = subscription.reg_type
    if subscription.frequency:
        info["frequency"] = subscription.frequency
    locale = _locale(subscription.locale)
    if locale:
        info["locale"] = locale
    return info


async def subscribe(
    session: AsyncSession,
    *,
    caller: Caller,
    message: dict[str, Any],
    sender_id: str,
    callback_uri: str,
    correlation_id: str,
) -> dict[str, Any]:
    """A ``SubscribeResponse``: one subscription (with its new code) per accepted item."""
    transaction_id = str(message["transaction_id"])
    seen: set[str] = set()
    answers = []
    for item in message["subscribe_request"]:
        problem = _precheck(
            item, seen, schema=SUBSCRIBE_ITEM, invalid_code="rjct.notify_details.invalid"
        )
        if problem is not None:
            answers.append(_rejected(item, *problem))
            continue
        criteria: dict[str, Any] = item["subscribe_criteria"]
        event_type = canonical_event_type(str(criteria["reg_event_type"]))
        record_type = _record_type(criteria.get("notify_record_type"))
        if event_type is None:
            answers.append(
                _rejected(
                    item,
                    "rjct.notify_types.invalid",
                    f"unknown reg_event_type {criteria['reg_event_type']!r}",
                )
            )
            continue
        if record_type is None:
            answers.append(
                _rejected(item, "rjct.notify_types.invalid", "notify_record_type: Group or Member")
            )
            continue
        purpose = envelopes.item_purpose(
            criteria, default=f"SPDCI subscription by {sender_id[:60]}"
        )
        try:
            check_subscription(criteria, caller=caller)
            await check_followed_people(session, criteria, caller=caller, purpose=purpose)
        except ItemRejected as exc:
            answers.append(_rejected(item, exc.reason_code, exc.message))
            continue
        filter_type = _filter_type(criteria)
        duplicate = await session.scalar(
            select(DciSubscription.code).where(
                DciSubscription.sender_id == sender_id,
                DciSubscription.status == "subscribe",
                DciSubscription.reg_event_type == event_type,
                DciSubscription.notify_record_type == record_type,
                DciSubscription.filter_type == filter_type,
                DciSubscription.filter == criteria["filter"],
            )
        )
        if duplicate is not None:
            answers.append(
                _rejected(
                    item,
                    "rjct.event.already_subscribed",
                    f"subscription {duplicate} already notifies these events",
                )
            )
            continue
        subscription = DciSubscription(
            code=str(uuid.uuid4()),
            sender_id=sender_id,
            status="subscribe",
            reg_type=criteria.get("reg_type"),
            reg_event_type=event_type,
            filter_type=filter_type,
            filter=criteria["filter"],
            notify_record_type=record_type,
            frequency=criteria.get("frequency"),
            callback_uri=callback_uri,
            caller=transactions.caller_to_json(caller),
            purpose=purpose,
            locale=item.get("locale"),
            transaction_id=transaction_id,
            reference_id=item["reference_id"],
            created_at=datetime.now(UTC),
        )
        session.add(subscription)
        await session.flush()
        answer: dict[str, Any] = {
            "reference_id": item["reference_id"],
            "timestamp": envelopes.now_iso(),
            "status": "succ",
            "subscriptions": [subscription_info(subscription)],
        }
        if _locale(item.get("locale")):
            answer["locale"] = _locale(item.get("locale"))
        answers.append(answer)
    return {
        "transaction_id": transaction_id,
        "correlation_id": correlation_id,
        "subscribe_response": answers,
    }


async def unsubscribe(
    session: AsyncSession,
    *,
    message: dict[str, Any],
    sender: DciSender,
    correlation_id: str,
) -> dict[str, Any]:
    """An ``UnSubscribeResponse``: the sender's listed subscriptions end; the status says which
    codes it could not end (unknown, another sender's, or already ended)."""
    codes: list[str] = list(dict.fromkeys(message["subscription_codes"]))
    answer: dict[str, Any] = {
        "transaction_id": str(message["transaction_id"]),
        "correlation_id": correlation_id,
        "timestamp": envelopes.now_iso(),
        "status": "succ",
        "subscription_status": [],
        # The request's codes under their corrected name (requests may spell it
        # ``sunscription_codes``, as the published spec did).
        "subscription_codes": codes,
    }
    if envelopes.parse_timestamp(message.get("timestamp")) is None:
        answer.update(
            status="rjct",
            status_reason_code="rjct.timestamp.invalid",
            status_reason_message="timestamp must be a date-time with an offset",
        )
        return answer
    rows = await session.scalars(
        select(DciSubscription).where(DciSubscription.code.in_(codes)).with_for_update()
    )
    found = {row.code: row for row in rows}
    owners = await _agencies(session, {row.sender_id for row in found.values()})
    unknown, foreign, already = [], [], []
    for code in codes:
        subscription = found.get(code)
        if subscription is None or owners.get(subscription.sender_id) != sender.agency:
            unknown.append(code)  # another agency's code reads exactly like an unknown one
            continue
        if subscription.sender_id != sender.sender_id:
            foreign.append(code)
            continue
        if subscription.status == "unsubscribe":
            already.append(code)
        else:
            subscription.status = "unsubscribe"
            subscription.unsubscribed_at = datetime.now(UTC)
        answer["subscription_status"].append({"code": code, "status": "unsubscribe"})
    await session.flush()
    for reason, listed, text in (
        ("rjct.subscription_code.invalid", unknown, "unknown subscription codes"),
        ("rjct.requester.invalid", foreign, "subscriptions of another sender"),
        ("rjct.event.already_unsubscribed", already, "already unsubscribed"),
    ):
        if listed:
            answer.update(
                status="rjct",
                status_reason_code=reason,
                status_reason_message=f"{text}: {', '.join(listed)}"[:999],
            )
            break
    return answer


async def _agencies(session: AsyncSession, sender_ids: Iterable[str]) -> dict[str, str]:
    rows = await session.execute(
        select(DciSender.sender_id, DciSender.agency).where(
            DciSender.sender_id.in_(list(sender_ids))
        )
    )
    return {row.sender_id: row.agency for row in rows}


class TxnStatusUnusable(ValueError):
    """The ``txnstatus_request`` names nothing the registry can look up (answered ERR)."""


async def txn_status(
    session: AsyncSession,
    *,
    message: dict[str, Any],
    sender_id: str,
    correlation_id: str,
) -> dict[str, Any]:
    """A ``TxnStatusResponse``: the state of the sender's searches or subscriptions."""
    request = message["txnstatus_request"]
    txn_type = request.get("txn_type")
    if txn_type not in ("search", "subscribe", "unsubscribe"):
        raise TxnStatusUnusable(f"txn_type {txn_type!r}: this registry reports search, subscribe")
    found = await transactions.find_for_status(
        session,
        sender_id=sender_id,
        txn_type=txn_type,
        attribute_type=str(request.get("attribute_type")),
        attribute_value=request.get("attribute_value"),
    )
    if found is None:
        raise TxnStatusUnusable(
            "attribute_type must be transaction_id, correlation_id (a string), "
            "reference_id_list or subscription_code_list (a list of strings)"
        )
    asked = (
        set(request["attribute_value"])
        if request.get("attribute_type") == "reference_id_list"
        else None
    )
    if txn_type == "search":
        items = [item for txn in found for item in _search_items(txn)]
    else:
        items = await _subscription_items(session, found)
    if asked is not None:
        items = [item for item in items if item.get("reference_id") in asked]
        answered = {item["reference_id"] for item in items}
        items += [
            _rejected({"reference_id": ref}, "rjct.reference_id.invalid", "no such request")
            for ref in request["attribute_value"]
            if ref not in answered
        ]
    status: dict[str, Any] = {
        "transaction_id": found[-1].transaction_id if found else str(message["transaction_id"]),
        "correlation_id": str(found[-1].id) if found else correlation_id,
        "search_response": items,
    }
    if txn_type != "search":
        status["subscribe_response"] = [
            {k: v for k, v in item.items() if k != "data"} for item in items
        ]
    return {
        "transaction_id": str(message["transaction_id"]),
        "correlation_id": correlation_id,
        "txnstatus_response": {"txn_type": _reported_type(txn_type), "txn_status": status},
    }


def _reported_type(txn_type: str) -> str:
    # The TxnStatusResponse enum is search | subscribe | receipt.
    return "subscribe" if txn_type == "unsubscribe" else txn_type


def _search_items(transaction: DciTransaction) -> list[dict[str, Any]]:
    if transaction.response and isinstance(transaction.response.get("search_response"), list):
        return list(transaction.response["search_response"])
    # Not answered yet (or failed before answering): each request with the transaction's state.
    return [
        {
            "reference_id": reference_id,
            "timestamp": envelopes.iso(transaction.created_at),
            "status": transaction.status,
        }
        for reference_id in transaction.reference_ids
    ]


async def _subscription_items(
    session: AsyncSession, found: list[DciTransaction]
) -> list[dict[str, Any]]:
    """One item per subscribe request, with the subscription's *current* state."""
    if not found:
        return []
    transaction_ids = {txn.transaction_id for txn in found if txn.txn_type == "subscribe"}
    rows = await session.scalars(
        select(DciSubscription).where(
            DciSubscription.sender_id == found[0].sender_id,
            DciSubscription.transaction_id.in_(transaction_ids),
        )
    )
    by_reference = {row.reference_id: row for row in rows}
    items: list[dict[str, Any]] = []
    for txn in found:
        if txn.txn_type != "subscribe" or not txn.response:
            continue
        for answer in txn.response.get("subscribe_response", []):
            item = {k: answer[k] for k in ("reference_id", "timestamp", "status") if k in answer}
            if answer.get("status_reason_message"):
                reason = answer.get("status_reason_code", "")
                item["status_reason_message"] = f"{reason}: {answer['status_reason_message']}"
            subscription = by_reference.get(answer.get("reference_id", ""))
            if subscription is not None:
                item["data"] = {
                    "version": "1.0.0",
                    "reg_record_type": "SubscriptionInfo",
                    "reg_records": [subscription_info(subscription)],
                }
            items.append(item)
    return items
