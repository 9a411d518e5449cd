"""CloudEvents 1.0 envelope, carried on Kafka in binary mode.

Binary mode (CloudEvents Kafka binding §3.2): the event's attributes travel as ``ce_*`` headers,
``content-type`` names the data's media type, the record value is the JSON ``data`` and the record
key is the aggregate id, so one person's events land on one partition in order. ``traceparent``
rides along as a header so a request's correlation id reaches every consumer's logs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CloudEvent",
    "EnvelopeError",
    "KafkaRecord",
    "event_json_schema",
    "from_kafka",
    "new_event",
    "to_kafka",
]

KafkaHeaders = list[tuple[str, bytes]]

_REQUIRED = ("ce_id", "ce_source", "ce_type", "ce_specversion")


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 context attributes Simpul uses, plus the JSON ``data``."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500, examples=["/simpul/registry"])
    type: str = Field(min_length=1, max_length=200, examples=["registry.person.registered.v1"])
    specversion: Literal["1.0"] = "1.0"
    time: datetime
    subject: str | None = Field(default=None, max_length=200)
    datacontenttype: Literal["application/json"] = "application/json"
    traceparent: str | None = Field(default=None, max_length=200)
    data: dict[str, Any]


class KafkaRecord(BaseModel):
    """What the relay hands to the producer: one event as a Kafka record."""

    model_config = ConfigDict(frozen=True)

    topic: str
    key: bytes
    value: bytes
    headers: KafkaHeaders


class EnvelopeError(ValueError):
    """A Kafka record that is not a valid Simpul CloudEvent (never retried: dead-lettered)."""


def new_event(
    *,
    source: str,
    type: str,
    subject: str,
    data: BaseModel | dict[str, Any],
    traceparent: str | None = None,
) -> CloudEvent:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=type,
        time=datetime.now(UTC),
        subject=subject,
        traceparent=traceparent,
        data=payload,
    )


def to_kafka(event: CloudEvent, *, topic: str, key: str) -> KafkaRecord:
    headers: KafkaHeaders = [
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_specversion", event.specversion.encode()),
        ("ce_time", event.time.isoformat().encode()),
        ("content-type", event.datacontenttype.encode()),
    ]
    if event.subject is not None:
        headers.append(("ce_subject", event.subject.encode()))
    if event.traceparent is not None:
        headers.append(("traceparent", event.traceparent.encode()))
    return KafkaRecord(
        topic=topic, key=key.encode(), value=orjson.dumps(event.data), headers=headers
    )


def from_kafka(
    value: bytes | None, headers: KafkaHeaders | tuple[tuple[str, bytes], ...]
) -> CloudEvent:
    """Parse a binary-mode record; raise :class:`EnvelopeError` naming what is wrong."""
    found: dict[str, str] = {}
    for name, raw in headers:
        try:
            found[name] = raw.decode()
        except UnicodeDecodeError as exc:
            raise EnvelopeError(f"header {name!r} is not UTF-8") from exc
    missing = [name for name in _REQUIRED if name not in found]
    if missing:
        raise EnvelopeError(f"missing CloudEvents headers: {', '.join(missing)}")
    if value is None:
        raise EnvelopeError("record has no value (tombstones carry no event)")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EnvelopeError("event data must be a JSON object")
    try:
        return CloudEvent(
            id=found["ce_id"],
            source=found["ce_source"],
            type=found["ce_type"],
            specversion=found["ce_specversion"],
            time=found.get("ce_time") or datetime.now(UTC),
            subject=found.get("ce_subject"),
            datacontenttype=found.get("content-type", "application/json"),
            traceparent=found.get("traceparent"),
            data=data,
        )
    except ValidationError as exc:
        raise EnvelopeError(f"invalid CloudEvents attributes: {exc.errors()[0]['msg']}") from exc


def event_json_schema(payload: type[BaseModel]) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of an event payload, as published in the AsyncAPI document."""
    return payload.model_json_schema(mode="serialization")
