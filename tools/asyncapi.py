"""Build the AsyncAPI 3.0 document of Simpul's events from the code.

    uv run python tools/asyncapi.py > asyncapi.yaml     # regenerate the committed document
    uv run python tools/asyncapi.py --check             # exit 1 if asyncapi.yaml is stale

Sources, all read from the services' code (never written by hand):

* ``<service>.events.PUBLISHED``: ``{event type: (topic, payload model)}``. Each topic becomes a
  channel, each type a message whose payload is the model's JSON Schema, and the service a
  ``send`` operation (its outbox relay publishes).
* ``<service>.consumers.CONSUMERS``: consumer groups with their topics and handler tables. Each
  group gets a ``receive`` operation per topic, listing the published types it handles, and a
  ``send`` operation on the topic's dead-letter channel ``<topic>.dlq``.
* ``shared.envelope.CloudEvent``: the CloudEvents 1.0 attributes, carried in Kafka binary mode as
  ``ce_*`` headers (the message headers schema).

A service whose ``events``/``consumers`` modules do not exist yet is left out (with a note on
stderr), as is a handled type no service publishes: the contract tests in tests/contract/ say
which consumer waits for which producer.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel

from shared.consumer import Handler
from shared.envelope import CloudEvent, event_json_schema
from shared.kafka import dlq_topic

ROOT = Path(__file__).resolve().parents[1]
DOCUMENT = ROOT / "asyncapi.yaml"
SERVICES = ("registry", "programs", "referrals", "complaints")
KAFKA_BINDING_VERSION = "0.5.0"
REGENERATE = "uv run python tools/asyncapi.py > asyncapi.yaml"

# CloudEvents attribute -> Kafka header (binary content mode, CloudEvents Kafka binding §3.2)
HEADER_OF_ATTRIBUTE = {
    "id": "ce_id",
    "source": "ce_source",
    "type": "ce_type",
    "specversion": "ce_specversion",
    "time": "ce_time",
    "subject": "ce_subject",
    "datacontenttype": "content-type",
    "traceparent": "traceparent",
}
# What shared.envelope.to_kafka always writes; ce_subject and traceparent only when set.
ALWAYS_SENT = ("ce_id", "ce_source", "ce_type", "ce_specversion", "ce_time", "content-type")
HEADER_DESCRIPTIONS = {
    "ce_id": "CloudEvents `id`: unique per event; consumers de-duplicate on it (inbox).",
    "ce_source": "CloudEvents `source`: the producing service, e.g. `/simpul/registry`.",
    "ce_type": "CloudEvents `type`: the versioned event type, e.g. `registry.person.registered.v1`",
    "ce_specversion": "CloudEvents `specversion`.",
    "ce_time": "CloudEvents `time`: when the change happened (RFC 3339).",
    "ce_subject": "CloudEvents `subject`: the aggregate's id, also the record key.",
    "content-type": "CloudEvents `datacontenttype`: the media type of the record value.",
    "traceparent": "W3C trace context of the request that caused the event (correlation id).",
}
DLQ_HEADERS = {
    "dlq_consumer": "Consumer group that gave up on the event.",
    "dlq_error": "Why: the last attempt's exception or validation error (at most 4000 chars).",
    "dlq_original_topic": "Topic the event was read from.",
    "dlq_original_partition": "Partition it was read from (decimal).",
    "dlq_original_offset": "Offset it was read at (decimal).",
}


@dataclass(frozen=True)
class Published:
    service: str
    type: str
    topic: str
    model: type[BaseModel]
    source: str | None


@dataclass(frozen=True)
class Subscription:
    """One consumer group of a service: its topics and the payload model of each handled type."""

    service: str
    group: str
    topics: tuple[str, ...]
    handlers: dict[str, type[BaseModel]]


@dataclass
class Catalogue:
    """Everything the services declare about their events."""

    published: list[Published] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)  # service -> missing module

    def producers_of(self, event_type: str) -> list[Published]:
        return [p for p in self.published if p.type == event_type]

    def published_on(self, topic: str) -> list[Published]:
        return [p for p in self.published if p.topic == topic]

    @property
    def topics(self) -> list[str]:
        return sorted({p.topic for p in self.published})

    def unpublished_handlers(self) -> Iterator[tuple[Subscription, str]]:
        """(subscription, type) pairs no service publishes on a topic the group subscribes to."""
        for sub in self.subscriptions:
            for event_type in sorted(sub.handlers):
                if not any(p.topic in sub.topics for p in self.producers_of(event_type)):
                    yield sub, event_type


def _optional_module(name: str) -> ModuleType | None:
    """Import ``name``; None only when that module (or its package) does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name in {name, name.partition(".")[0]}:
            return None
        raise


def load_catalogue(services: tuple[str, ...] = SERVICES) -> Catalogue:
    catalogue = Catalogue()
    for service in services:
        events = _optional_module(f"{service}.events")
        consumers = _optional_module(f"{service}.consumers")
        if events is None or consumers is None:
            catalogue.absent[service] = (
                f"{service}.events" if events is None else f"{service}.consumers"
            )
            continue
        source = getattr(events, "SOURCE", None)
        for event_type, (topic, model) in sorted(events.PUBLISHED.items()):
            catalogue.published.append(Published(service, event_type, topic, model, source))
        for spec in consumers.CONSUMERS:
            handlers: dict[str, Handler[Any]] = dict(spec.handlers)
            catalogue.subscriptions.append(
                Subscription(
                    service=service,
                    group=spec.name,
                    topics=tuple(spec.topics),
                    handlers={t: h.payload for t, h in sorted(handlers.items())},
                )
            )
    return catalogue


# --- Building the document -------------------------------------------------------------------


def ident(name: str) -> str:
    """An AsyncAPI object id (``^[A-Za-z0-9_-]+$``) for a topic or event type."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _channel_ref(channel_id: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel_id}"}


def _channel_message_ref(channel_id: str, message_id: str) -> dict[str, str]:
    return {"$ref": f"#/channels/{channel_id}/messages/{message_id}"}


class _SchemaStore:
    """``components.schemas``: payload schemas with their ``$defs`` hoisted next to them."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def add(self, key: str, schema: dict[str, Any]) -> None:
        if key in self.schemas and self.schemas[key] != schema:
            raise SystemExit(f"asyncapi: two different schemas named {key!r}; rename a model")
        self.schemas[key] = schema

    def add_payload(self, published: Published) -> dict[str, str]:
        schema = event_json_schema(published.model)
        defs = schema.pop("$defs", {})
        prefix = f"{published.service}."

        def relink(node: Any) -> Any:
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/$defs/"):
                    node = {
                        **node,
                        "$ref": f"#/components/schemas/{prefix}{ref.removeprefix('#/$defs/')}",
                    }
                return {key: relink(value) for key, value in node.items()}
            if isinstance(node, list):
                return [relink(item) for item in node]
            return node

        for name, definition in defs.items():
            self.add(prefix + name, relink(definition))
        key = ident(published.type)
        self.add(key, relink(schema))
        return {"$ref": f"#/components/schemas/{key}"}


def cloudevents_headers_schema() -> dict[str, Any]:
    """The ``ce_*`` headers, with each attribute's constraints taken from ``CloudEvent``."""
    attributes = CloudEvent.model_json_schema(mode="serialization")["properties"]
    properties: dict[str, Any] = {}
    for attribute, header in HEADER_OF_ATTRIBUTE.items():
        schema = dict(attributes[attribute])
        if "anyOf" in schema:  # optional attributes: the header is absent rather than null
            (schema,) = [branch for branch in schema["anyOf"] if branch.get("type") != "null"]
        schema = {k: v for k, v in schema.items() if k not in {"title", "default", "examples"}}
        properties[header] = {**schema, "description": HEADER_DESCRIPTIONS[header]}
    return {
        "type": "object",
        "description": (
            "CloudEvents 1.0 attributes in Kafka binary content mode: one `ce_*` header per "
            "attribute, the record value is the event's JSON `data`, the record key is the "
            "aggregate's id."
        ),
        "properties": properties,
        "required": list(ALWAYS_SENT),
    }


def _event_headers(event_type: str, source: str | None) -> dict[str, Any]:
    pinned: dict[str, Any] = {"ce_type": {"const": event_type}}
    if source is not None:
        pinned["ce_source"] = {"const": source}
    return {
        "type": "object",
        "allOf": [
            {"$ref": "#/components/schemas/CloudEventsKafkaHeaders"},
            {"type": "object", "properties": pinned},
        ],
    }


def _dead_letter_message() -> dict[str, Any]:
    return {
        "name": "dead_letter",
        "title": "Dead-lettered event",
        "summary": "An event a consumer gave up on, parked with the reason.",
        "description": (
            "The original record (key, value and headers, unchanged) plus `dlq_*` headers. A "
            "consumer parks an event here when its envelope or payload is invalid (at once) or "
            "when its handler still fails after the configured retries; the partition then "
            "moves on. Replay by producing the value and the original headers back to "
            "`dlq_original_topic`: the consumers' inbox makes a replay of a handled event harmless."
        ),
        "headers": {
            "type": "object",
            "description": (
                "The original `ce_*` headers (absent when the envelope was the problem), plus:"
            ),
            "properties": {
                name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()
            },
            "required": list(DLQ_HEADERS),
        },
        "payload": {
            "description": (
                "The original record value, byte for byte: normally the event's JSON `data`, "
                "possibly not JSON at all when that is why it was parked."
            )
        },
        "bindings": {"kafka": {"key": {"type": "string"}, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().splitlines()[0]


def build_document(catalogue: Catalogue) -> dict[str, Any]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    store = _SchemaStore()
    store.add("CloudEventsKafkaHeaders", cloudevents_headers_schema())
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    for topic in catalogue.topics:
        channel_id = ident(topic)
        on_topic = catalogue.published_on(topic)
        for published in on_topic:
            message_id = ident(published.type)
            if message_id in messages:
                raise SystemExit(f"asyncapi: {published.type} is published on two topics")
            messages[message_id] = {
                "name": published.type,
                "title": published.model.__name__,
                "summary": _summary(published.model),
                "contentType": "application/json",
                "headers": _event_headers(published.type, published.source),
                "payload": store.add_payload(published),
                "correlationId": {"$ref": "#/components/correlationIds/traceparent"},
                "bindings": {
                    "kafka": {
                        "key": {
                            "type": "string",
                            "description": "The aggregate's id: its events stay in order.",
                        },
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
        producers = sorted({p.service for p in on_topic})
        channels[channel_id] = {
            "address": topic,
            "title": topic,
            "summary": f"Events of one aggregate, published by {', '.join(producers)}.",
            "messages": {
                ident(p.type): {"$ref": f"#/components/messages/{ident(p.type)}"} for p in on_topic
            },
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        for service in producers:
            operations[f"{service}_send_{channel_id}"] = {
                "action": "send",
                "channel": _channel_ref(channel_id),
                "title": f"{service} publishes {topic}",
                "summary": "Written to the outbox with the state change; the relay publishes.",
                "tags": [{"name": service}],
                "messages": [
                    _channel_message_ref(channel_id, ident(p.type))
                    for p in on_topic
                    if p.service == service
                ],
            }

        subscribers = [s for s in catalogue.subscriptions if topic in s.topics]
        handled = {
            sub.group: [p for p in on_topic if p.type in sub.handlers] for sub in subscribers
        }
        if not any(handled.values()):
            continue
        dlq = dlq_topic(topic)
        dlq_id = ident(dlq)
        channels[dlq_id] = {
            "address": dlq,
            "title": dlq,
            "summary": f"Dead letters of {topic}: events its consumers gave up on.",
            "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
            "bindings": {"kafka": {"topic": dlq, "bindingVersion": KAFKA_BINDING_VERSION}},
        }
        for sub in sorted(subscribers, key=lambda s: s.group):
            if not handled[sub.group]:
                continue
            group_binding = {
                "kafka": {
                    "groupId": {"type": "string", "enum": [sub.group]},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            }
            operations[f"{sub.group}_receive_{channel_id}"] = {
                "action": "receive",
                "channel": _channel_ref(channel_id),
                "title": f"{sub.service} consumes {topic}",
                "summary": (
                    "Handled once per event id (inbox, in the effect's transaction); other types "
                    "on the topic are skipped."
                ),
                "tags": [{"name": sub.service}],
                "bindings": group_binding,
                "messages": [
                    _channel_message_ref(channel_id, ident(p.type)) for p in handled[sub.group]
                ],
            }
            operations[f"{sub.group}_dead_letter_{channel_id}"] = {
                "action": "send",
                "channel": _channel_ref(dlq_id),
                "title": f"{sub.service} parks failed {topic} events",
                "summary": "Invalid events at once, failing ones after the retries with back-off.",
                "tags": [{"name": sub.service}],
                "bindings": group_binding,
                "messages": [_channel_message_ref(dlq_id, "dead_letter")],
            }

    if catalogue.subscriptions:
        messages["dead_letter"] = _dead_letter_message()

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Simpul events",
            "version": project["version"],
            "description": (
                "The events Simpul's services exchange through Kafka. Generated by "
                "`tools/asyncapi.py` from each service's `events.py` (what it publishes) and "
                "`consumers.py` (what it reads); CI fails when this file and the code disagree.\n\n"
                "* Envelope: CloudEvents 1.0 in Kafka binary content mode (`ce_*` headers, JSON "
                "`data` as the record value).\n"
                "* One topic per aggregate and version; the record key is the aggregate's id, so "
                "one aggregate's events are read in order.\n"
                "* Delivery is at least once; consumers de-duplicate on `ce_id`. A consumer parks "
                "an event it cannot handle on `<topic>.dlq` and carries on.\n"
                "* Payloads carry the minimum a consumer needs: the registry's person id, never "
                "the NIK or a name.\n"
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {
                "host": "kafka:9092",
                "protocol": "kafka",
                "description": "Apache Kafka (KRaft) of docker-compose.yml.",
            },
            "embedded": {
                "host": "127.0.0.1:19092",
                "protocol": "kafka",
                "description": "The in-memory Tansu broker of `simpul run` (development).",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": dict(sorted(store.schemas.items())),
            "messages": messages,
            "correlationIds": {
                "traceparent": {
                    "description": "W3C trace context: a request's id, into events and consumers.",
                    "location": "$message.header#/traceparent",
                }
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors for repeated objects, block style for multi-line strings."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str_representer)


def render(catalogue: Catalogue | None = None) -> str:
    document = build_document(catalogue or load_catalogue())
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return (
        "# Generated by tools/asyncapi.py from the services' events.py and consumers.py.\n"
        f"# Do not edit: change the code, then run `{REGENERATE}`.\n" + body
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help=f"compare with {DOCUMENT.name}; exit 1 if stale"
    )
    args = parser.parse_args(argv)

    catalogue = load_catalogue()
    for service, module in catalogue.absent.items():
        sys.stderr.write(f"asyncapi: {service} left out: no module {module} yet\n")
    for sub, event_type in catalogue.unpublished_handlers():
        sys.stderr.write(
            f"asyncapi: {sub.group} handles {event_type}, which no service publishes on "
            f"{', '.join(sub.topics)}: not documented\n"
        )
    text = render(catalogue)
    if not args.check:
        sys.stdout.write(text)
        return 0
    current = DOCUMENT.read_text() if DOCUMENT.exists() else ""
    if current == text:
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        text.splitlines(keepends=True),
        "asyncapi.yaml",
        "generated",
    )
    sys.stderr.writelines(list(diff)[:200])
    sys.stderr.write(f"\nasyncapi.yaml is out of date with the code: run `{REGENERATE}`\n")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
