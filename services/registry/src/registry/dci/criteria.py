"""Subscription criteria: checked when a partner subscribes, and evaluated in SQL for each changed
person or household to find the records a ``notify`` callback carries."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import records
from registry.dci.compiler import Compiler, audit_reads, read_records
from registry.dci.events import canonical_event_type
from registry.dci.filters import (
    BY_NAME,
    MAX_IN_VALUES,
    NOTIFY_DETAILS_INVALID,
    NOTIFY_TYPES_INVALID,
    PERSON_ID_INVALID,
    Attribute,
    Entity,
    Filter,
    ItemRejected,
    attribute_key,
    parse_entity,
    parse_filter,
    query_shape,
)
from registry.models import Person
from registry.nik import nik_problems
from shared.auth import Caller

__all__ = ["check_followed_people", "check_subscription", "notify_records", "subscription_filter"]


def check_subscription(criteria: dict[str, Any], *, caller: Caller | None = None) -> None:
    """Reject a ``subscribe_criteria`` the registry cannot honour.

    ``rjct.notify_types.invalid``: unknown ``reg_event_type`` or ``notify_record_type``;
    ``rjct.notify_details.invalid``: a bad ``filter`` / ``filter_type`` / ``frequency`` (the
    spec's subscribe reason codes have no ``rjct.filter.invalid``); ``rjct.person_id.invalid``:
    an ``idtype-value`` filter on a malformed person identifier (a NIK that breaks Dukcapil's
    rules, :func:`registry.nik.nik_problems`). With ``caller``, a filter on an attribute its
    scopes do not reveal is rejected as well. Whether the person exists (for the caller) is
    :func:`check_followed_people`.
    """
    if not isinstance(criteria, dict):
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "subscribe_criteria is an object")
    event_type = criteria.get("reg_event_type")
    if not isinstance(event_type, str) or canonical_event_type(event_type) is None:
        raise ItemRejected(
            NOTIFY_TYPES_INVALID,
            f"reg_event_type {event_type!r} is not one of REGISTER, UPDATE, DEATH, MOVE, "
            "NewHouseHoldMember, DECILE_CHANGE",
        )
    record_type = criteria.get("notify_record_type")
    try:
        if parse_entity(record_type) is None:
            raise ItemRejected(NOTIFY_TYPES_INVALID, "notify_record_type is required")
    except ItemRejected as rejected:
        raise ItemRejected(
            NOTIFY_TYPES_INVALID, f"notify_record_type is Group or Member, not {record_type!r}"
        ) from rejected
    if "filter" not in criteria:
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "subscribe_criteria needs a filter")
    followed = _followed_people(criteria)
    if followed is not None:
        attribute, values = followed
        for value in values:
            problems = _person_identifier_problems(attribute, value)
            if problems:
                raise ItemRejected(
                    PERSON_ID_INVALID, f"{attribute.name} {value!r}: {'; '.join(problems)}"
                )
    subscription_filter(
        criteria,
        scopes=caller.scopes if caller is not None else None,
    )
    _check_frequency(criteria.get("frequency"))


def _followed_people(criteria: Mapping[str, Any]) -> tuple[Attribute, list[Any]] | None:
    """The person identifier and its values when a subscription follows given people (an
    ``idtype-value`` filter on NIK, UIN or PERSON_ID), else None."""
    query = criteria.get("filter")
    if not isinstance(query, dict):
        return None
    try:
        parsed = query_shape(query, criteria.get("filter_type"), NOTIFY_DETAILS_INVALID)
    except ItemRejected:
        return None  # the filter's own check says what is wrong
    if parsed.shape != "idtype-value":
        return None
    attribute = BY_NAME.get(attribute_key(query.get("type")))
    if attribute is None or attribute.name not in (records.NIK, records.PERSON_ID):
        return None
    value = query.get("value")
    values = value if isinstance(value, list) else [value]
    # An empty or oversized list is a bad filter, not a bad person: the parser rejects it.
    return (attribute, values) if 0 < len(values) <= MAX_IN_VALUES else None


def _person_identifier_problems(attribute: Attribute, value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return [f"{attribute.name} is a string, not {value!r}"]
    text = str(value).strip()
    if attribute.name == records.NIK:
        return nik_problems(text)
    try:
        uuid.UUID(text)
    except ValueError:
        return ["a registry person id is a UUID"]
    return []


async def check_followed_people(
    session: AsyncSession, criteria: Mapping[str, Any], *, caller: Caller, purpose: str
) -> None:
    """``rjct.person_id.invalid`` when a subscription follows a person the caller cannot read:
    unknown, or outside its regions, answered alike so the answer tells nothing of records
    outside them. Call after :func:`check_subscription` (which rejects malformed ids).

    The people found are audited with ``purpose``: that someone is in the registry is itself
    personal data, and a subscription accepted for their NIK reveals it.
    """
    followed = _followed_people(criteria)
    if followed is None:
        return
    attribute, values = followed
    wanted: dict[Any, object] = {}
    for value in values:
        text = str(value).strip()
        wanted[text if attribute.name == records.NIK else uuid.UUID(text)] = value
    compiler = Compiler(session, "Member", caller)
    _, column_of = attribute.column_for("Member")
    column = column_of(compiler.p, caller)
    rows = await session.execute(
        compiler.base().add_columns(column).where(column.in_(list(wanted)))
    )
    found = {key: person_id for person_id, key in rows}
    await audit_reads(
        session, caller, purpose, people=[str(person_id) for person_id in found.values()]
    )
    missing = [value for key, value in wanted.items() if key not in found]
    if missing:
        raise ItemRejected(
            PERSON_ID_INVALID,
            f"{attribute.name} {missing[0]!r}: no such person among the records you may read",
        )


def subscription_filter(
    criteria: Mapping[str, Any], *, scopes: frozenset[str] | None
) -> tuple[Entity, Filter | None]:
    """The record type and filter tree of a subscription (``rjct.notify_details.invalid``)."""
    filter_type = criteria.get("filter_type")
    if filter_type == "graphql":
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "graphql filters are not supported")
    return parse_filter(
        criteria.get("filter"),
        query_type=filter_type,
        entity=criteria.get("notify_record_type"),
        scopes=scopes,
        reason=NOTIFY_DETAILS_INVALID,
    )


def _check_frequency(frequency: object) -> None:
    if frequency is None:
        return
    if not isinstance(frequency, dict):
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "frequency is {start_time, end_time, frequency}")
    try:
        start = datetime.fromisoformat(str(frequency.get("start_time")))
        end = datetime.fromisoformat(str(frequency.get("end_time")))
    except ValueError:
        raise ItemRejected(
            NOTIFY_DETAILS_INVALID, "frequency start_time and end_time are ISO 8601 date-times"
        ) from None
    if (start.tzinfo is None) != (end.tzinfo is None) or end <= start:
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "frequency end_time must follow start_time")


async def notify_records(
    session: AsyncSession,
    *,
    caller: Caller,
    criteria: Mapping[str, Any],
    purpose: str,
    person_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None,
) -> tuple[Entity, list[dict[str, Any]]]:
    """The records a subscription is told about for one changed person or household.

    The subscription's filter is evaluated in SQL, with the subscriber's own scopes and
    regions, against the changed person (``person_id``: the person, or as a ``Group`` their
    household) or household (``household_id``: the household, or as ``Member`` records its
    members). Returned records are projected for the subscriber and audited with ``purpose``.
    Raises :class:`ItemRejected` if the filter no longer fits the subscriber's scopes.
    """
    entity, node = subscription_filter(criteria, scopes=caller.scopes)
    compiler = Compiler(session, entity, caller)
    about: ColumnElement[bool]
    if person_id is not None and entity == records.MEMBER:
        about = compiler.p.c.id == person_id
    elif person_id is not None:
        person = Person.__table__.alias("changed")
        about = (
            compiler.h.c.id
            == select(person.c.household_id).where(person.c.id == person_id).scalar_subquery()
        )
    elif entity == records.MEMBER:
        about = compiler.p.c.household_id == household_id
    else:
        about = compiler.h.c.id == household_id
    matching = compiler.base().where(about, await compiler.where(node))
    ids = list(await session.scalars(matching.order_by(*compiler.order(None))))
    found = await read_records(session, entity=entity, ids=ids, caller=caller, purpose=purpose)
    return entity, found
