"""SPDCI search items, answered from the registry tables.

One ``search_request`` item becomes one ``search_response`` item: the item's query is parsed
into a small filter tree (:class:`Condition` / :class:`Combination`), compiled to SQL over the
``person`` and ``household`` tables, counted, sorted, paginated, and the page is read with the
caller's projection (:mod:`registry.projection`) and mapped to DCI records
(:mod:`registry.dci.records`). A bad item is answered ``rjct`` with the spec's reason code; the
other items of the batch are answered normally."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci.compiler import Compiler, read_records
from registry.dci.envelope import item_purpose
from registry.dci.filters import (
    LOCALE,
    MAX_PAGE_SIZE,
    MAX_UNPAGINATED_RECORDS,
    PAGINATION_INVALID,
    REFERENCE_ID_INVALID,
    REG_TYPE,
    SEARCH_CRITERIA_INVALID,
    TIMESTAMP_INVALID,
    TOO_MANY_RECORDS,
    VERSION,
    ItemRejected,
    parse_filter,
)
from shared.auth import Caller

__all__ = ["answer_search_item"]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer")
    try:
        number = float(value)
    except ValueError:
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer") from None
    if not number.is_integer() or number < 1:
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer")
    return int(number)


def _pagination(raw: object) -> tuple[int, int] | None:
    """(page_size, page_number) of the item, 1-based; None when it asks for no pages."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or "page_size" not in raw:
        raise ItemRejected(PAGINATION_INVALID, "pagination needs page_size (and page_number)")
    size = _positive_int(raw["page_size"], "page_size")
    number = _positive_int(raw.get("page_number", 1), "page_number")
    if size > MAX_PAGE_SIZE:
        raise ItemRejected(PAGINATION_INVALID, f"page_size may not exceed {MAX_PAGE_SIZE}")
    return size, number


def _check_item(item: Mapping[str, Any]) -> Mapping[str, Any]:
    reference_id = item.get("reference_id")
    if not isinstance(reference_id, str) or not reference_id.strip() or len(reference_id) > 99:
        raise ItemRejected(REFERENCE_ID_INVALID, "reference_id is a non-empty string (<= 99)")
    timestamp = item.get("timestamp")
    try:
        if not isinstance(timestamp, str):
            raise ValueError
        datetime.fromisoformat(timestamp)
    except ValueError:
        raise ItemRejected(
            TIMESTAMP_INVALID, "timestamp is an ISO 8601 date-time, e.g. 2026-11-25T10:00:00Z"
        ) from None
    criteria = item.get("search_criteria")
    if not isinstance(criteria, dict):
        raise ItemRejected(SEARCH_CRITERIA_INVALID, "search_criteria is required (an object)")
    reg_type = criteria.get("reg_type")
    if reg_type is not None and "social" not in str(reg_type).lower():
        raise ItemRejected(
            SEARCH_CRITERIA_INVALID, f"this is a social registry ({REG_TYPE}), not {reg_type!r}"
        )
    if "query" not in criteria:
        raise ItemRejected(SEARCH_CRITERIA_INVALID, "search_criteria needs a query")
    return criteria


async def _search(
    session: AsyncSession, *, caller: Caller, criteria: Mapping[str, Any], purpose: str
) -> tuple[dict[str, Any], dict[str, int]]:
    entity, node = parse_filter(
        criteria["query"],
        query_type=criteria.get("query_type"),
        entity=criteria.get("response_entity"),
        record_type=criteria.get("reg_record_type"),
        scopes=caller.scopes,
    )
    compiler = Compiler(session, entity, caller)
    order = compiler.order(criteria.get("sort"))
    page = _pagination(criteria.get("pagination"))
    matching = compiler.base().where(await compiler.where(node))
    total = await session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    if page is None:
        if total > MAX_UNPAGINATED_RECORDS:
            raise ItemRejected(
                TOO_MANY_RECORDS,
                f"{total} records match, more than {MAX_UNPAGINATED_RECORDS} in one answer: "
                f"ask with pagination (page_size up to {MAX_PAGE_SIZE})",
            )
        size, number = MAX_UNPAGINATED_RECORDS, 1
    else:
        size, number = page
    ids = list(
        await session.scalars(matching.order_by(*order).limit(size).offset((number - 1) * size))
    )
    found = await read_records(
        session,
        entity=entity,
        ids=ids,
        caller=caller,
        purpose=item_purpose(criteria, default=purpose),
    )
    data = {
        "version": VERSION,
        "reg_type": criteria.get("reg_type") or REG_TYPE,
        "reg_record_type": entity,
        "reg_records": found,
    }
    return data, {"page_size": size, "page_number": number, "total_count": total}


def _answer(item: Mapping[str, Any]) -> dict[str, Any]:
    reference_id = item.get("reference_id")
    answer: dict[str, Any] = {
        "reference_id": reference_id if isinstance(reference_id, str) else "",
        "timestamp": _now(),
    }
    locale = item.get("locale")
    if isinstance(locale, str) and LOCALE.match(locale):
        answer["locale"] = locale
    return answer


def _rejected(answer: dict[str, Any], rejected: ItemRejected) -> dict[str, Any]:
    return {
        **answer,
        "status": "rjct",
        "status_reason_code": rejected.reason_code,
        "status_reason_message": rejected.message[:999],
    }


async def answer_search_item(
    session: AsyncSession, *, caller: Caller, item: dict[str, Any], purpose: str
) -> dict[str, Any]:
    """One ``search_request`` item -> one ``search_response`` item.

    ``status`` ``succ`` with ``data`` (``reg_records``) and ``pagination``, or ``rjct`` with the
    reason code and message. Reads are audited with the item's stated purpose, else
    ``purpose``. Never raises for a bad item: it rejects it.
    """
    answer = _answer(item)
    try:
        criteria = _check_item(item)
        data, pagination = await _search(session, caller=caller, criteria=criteria, purpose=purpose)
    except ItemRejected as rejected:
        return _rejected(answer, rejected)
    return {**answer, "status": "succ", "data": data, "pagination": pagination}
