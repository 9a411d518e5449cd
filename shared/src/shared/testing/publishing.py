"""Put events on the real broker as another service's outbox relay would, for consumer tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.envelope import CloudEvent, KafkaRecord, new_event, to_kafka
from shared.kafka import create_producer
from shared.settings import SharedSettings

__all__ = ["publish_events", "publish_records"]


async def publish_events(
    settings: SharedSettings,
    topic: str,
    *events: CloudEvent | Mapping[str, Any],
    key: str | None = None,
    type: str | None = None,
    source: str = "/simpul/tests",
) -> list[str]:
    """Publish ``events`` to ``topic`` in binary mode, encoded by the relay's own
    :func:`shared.envelope.to_kafka`, one after the other; their event ids, in order.

    A mapping is the data of a new event of ``type`` from ``source`` with ``key`` as its
    subject. Each record's key is ``key``, else its event's subject: events of one key land on
    one partition and are consumed in the order given.
    """
    records: list[KafkaRecord] = []
    ids: list[str] = []
    for given in events:
        event = given if isinstance(given, CloudEvent) else _new_event(given, type, source, key)
        record_key = key if key is not None else event.subject
        if record_key is None:
            raise ValueError(f"event {event.id} has no subject: give the record key as key=")
        records.append(to_kafka(event, topic=topic, key=record_key))
        ids.append(event.id)
    await publish_records(settings, *records)
    return ids


async def publish_records(settings: SharedSettings, *records: KafkaRecord) -> None:
    """Send ``records`` exactly as given, in order: the path for bytes no relay would write
    (poison messages: a value that is not JSON, CloudEvents headers missing)."""
    producer = create_producer(settings, role="test")
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                record.topic, record.value, key=record.key, headers=record.headers
            )
    finally:
        await producer.stop()


def _new_event(
    data: Mapping[str, Any], type: str | None, source: str, subject: str | None
) -> CloudEvent:
    if type is None or subject is None:
        raise ValueError("an event given as its data needs type= and key= (its subject)")
    return new_event(source=source, type=type, subject=subject, data=dict(data))
