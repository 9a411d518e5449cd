"""Registry events -> SPDCI ``notify`` callbacks to the subscriptions they match.

The consumer ``registry-dci`` follows the registry's own topics (``registry.person.v1``,
``registry.household.v1``). For each event it names the DCI event types
(:func:`registry.dci.events.dci_event_types`), loads the active subscriptions to those types, and
for each one evaluates the subscription's filter *in SQL* against the changed person or household
with the subscriber's stored rights (scopes and regions of the token that subscribed): the
subscriber is told only what its own search would have found, projected the same way, and the
read is audited under its agency with the subscription's purpose. A match becomes a
``NotifyEventRequest`` handed to :func:`registry.dci.delivery.enqueue_callback` in the consumer's
inbox transaction, so an event notifies each subscriber once (redelivery changes nothing) and
the delivery worker sends, signs, retries and logs it.

What a notify holds: one ``notify_event`` item whose ``reg_records`` are the subscription's
``notify_record_type``: for a person event the person (``Member``) or their household
(``Group``); for a household event the household (``Group``) or its members (``Member``). The
notify's ``transaction_id`` is the subscribe request's, which is how a subscriber ties it to the
subscription. ``data.reg_event_type`` is set when the spec's notify enumerates the type
(``REGISTER``, ``NewHouseHoldMember``) and left out otherwise (see
:data:`registry.dci.events.NOTIFY_ENUM`).

A subscription's ``frequency`` window (``start_time`` .. ``end_time``) is honoured: outside it
nothing is sent. Its cron expression is not: notifications go out as events happen.

The subscriber's regions apply to the record *after* the change: a regional subscriber hears of
a person moving into its regions, not of one moving out (it could not read them any more), and
an event outside its regions reads exactly like no event at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.dci import events as dci_events
from registry.dci.criteria import notify_records
from registry.dci.delivery import enqueue_callback
from registry.dci.filters import LOCALE, REG_TYPE, VERSION, ItemRejected
from registry.dci.models import DciSubscription
from registry.dci.transactions import caller_from_json
from registry.events import (
    HOUSEHOLD_TOPIC,
    PERSON_MOVED,
    PERSON_REGISTERED,
    PERSON_TOPIC,
    PUBLISHED,
    HouseholdSnapshot,
    PersonSnapshot,
)
from shared.consumer import Handler
from shared.envelope import CloudEvent
from shared.service import ConsumerSpec

__all__ = ["CONSUMER", "HANDLERS", "notify_subscribers"]

log = logging.getLogger("registry.dci.notifications")


def _in_window(frequency: Mapping[str, Any] | None, at: datetime) -> bool:
    if not frequency:
        return True
    try:
        start = datetime.fromisoformat(str(frequency["start_time"]))
        end = datetime.fromisoformat(str(frequency["end_time"]))
    except (KeyError, ValueError):
        return True  # checked at subscribe time; an unreadable window does not silence a feed
    if start.tzinfo is None:
        start, end = start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)
    return start <= at <= end


def _timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def notify_message(
    subscription: DciSubscription, *, entity: str, found: list[dict[str, Any]], at: datetime
) -> dict[str, Any]:
    """The ``NotifyEventRequest`` telling ``subscription`` about ``found``."""
    data: dict[str, Any] = {"version": VERSION, "reg_type": subscription.reg_type or REG_TYPE}
    if subscription.reg_event_type in dci_events.NOTIFY_ENUM:
        data["reg_event_type"] = subscription.reg_event_type
    data.update({"reg_record_type": entity, "reg_records": found})
    event: dict[str, Any] = {
        "reference_id": uuid.uuid4().hex,
        "timestamp": _timestamp(at),
        "data": data,
    }
    if subscription.locale and LOCALE.match(subscription.locale):
        event["locale"] = subscription.locale
    return {"transaction_id": subscription.transaction_id, "notify_event": [event]}


async def notify_subscribers(
    session: AsyncSession,
    *,
    event_types: Sequence[str],
    person_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None,
    at: datetime,
) -> list[uuid.UUID]:
    """Enqueue a notify for each active subscription to ``event_types`` the change matches."""
    if not event_types:
        return []
    subscriptions = await session.scalars(
        select(DciSubscription)
        .where(
            DciSubscription.status == "subscribe",
            DciSubscription.reg_event_type.in_(event_types),
        )
        .order_by(DciSubscription.created_at, DciSubscription.code)
    )
    deliveries: list[uuid.UUID] = []
    for subscription in subscriptions.all():
        if not _in_window(subscription.frequency, at):
            continue
        criteria = {
            "filter_type": subscription.filter_type,
            "filter": subscription.filter,
            "notify_record_type": subscription.notify_record_type,
        }
        try:
            entity, found = await notify_records(
                session,
                caller=caller_from_json(subscription.caller),
                criteria=criteria,
                purpose=subscription.purpose,
                person_id=person_id,
                household_id=household_id,
            )
        except ItemRejected as rejected:
            # Accepted at subscribe time, so only a change of rules gets here: skip the
            # subscription (fail closed) rather than block the registry's event stream.
            log.warning(
                "dci subscription %s filter no longer applies: %s",
                subscription.code,
                rejected.message,
            )
            continue
        if not found:
            continue
        deliveries.append(
            await enqueue_callback(
                session,
                sender_id=subscription.sender_id,
                url=subscription.callback_uri,
                action="notify",
                message=notify_message(subscription, entity=entity, found=found, at=at),
                transaction_id=subscription.transaction_id,
                subscription_code=subscription.code,
            )
        )
    return deliveries


class _PersonEvent(PersonSnapshot):
    """What the notifier reads of any ``registry.person.*`` event (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore")
    from_household_id: uuid.UUID | None = None


class _HouseholdEvent(HouseholdSnapshot):
    """What the notifier reads of any ``registry.household.*`` event."""

    model_config = ConfigDict(extra="ignore")


async def on_person_event(session: AsyncSession, person: _PersonEvent, event: CloudEvent) -> None:
    joined = person.household_id is not None and (
        event.type == PERSON_REGISTERED
        or (event.type == PERSON_MOVED and person.household_id != person.from_household_id)
    )
    await notify_subscribers(
        session,
        event_types=dci_events.dci_event_types(event.type, joined_household=joined),
        person_id=person.person_id,
        at=event.time,
    )


async def on_household_event(
    session: AsyncSession, household: _HouseholdEvent, event: CloudEvent
) -> None:
    await notify_subscribers(
        session,
        event_types=dci_events.dci_event_types(event.type),
        household_id=household.household_id,
        at=event.time,
    )


def _handler(topic: str) -> Handler[Any]:
    if topic == PERSON_TOPIC:
        return Handler(_PersonEvent, on_person_event)
    return Handler(_HouseholdEvent, on_household_event)


HANDLERS: dict[str, Handler[Any]] = {
    event_type: _handler(topic)
    for event_type, (topic, _model) in PUBLISHED.items()
    if topic in (PERSON_TOPIC, HOUSEHOLD_TOPIC)
}

CONSUMER = ConsumerSpec(
    name="registry-dci", topics=[PERSON_TOPIC, HOUSEHOLD_TOPIC], handlers=HANDLERS
)
