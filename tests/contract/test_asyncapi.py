"""The event contract: asyncapi.yaml is current, valid AsyncAPI 3.0, and consumers read producers.

* The committed ``asyncapi.yaml`` is exactly what ``tools/asyncapi.py`` builds from the code now.
* It is structurally valid AsyncAPI 3.0.0. No PyPI package ships the official AsyncAPI 3.0 JSON
  Schema (it lives in the npm package ``@asyncapi/specs``), so the rules of the 3.0.0
  specification that a generated document could break are checked here: required and allowed
  fields of each object, identifiers, every ``$ref`` resolving, operations naming only their
  channel's messages, headers being object schemas, payload schemas being valid JSON Schema.
* Events written by hand from the document fit it: ``tests/contract/examples/<type>.json`` holds
  one CloudEvent per documented type, as a consumer's author would write it from asyncapi.yaml
  (not generated from the models); each validates against the committed document's payload and
  headers schemas and parses as a CloudEvent, every documented type has one, and broken copies
  (a required field left out, a value outside an enum, a bad pattern or format, an undocumented
  field, wrong envelope attributes) are refused.
* The headers written by ``shared.envelope.to_kafka`` validate against the documented headers.
* Every type a consumer handles is published on a topic it subscribes to, and the consumer's own
  (tolerant-reader) model reads the hand-written example and whatever the producer's model can
  emit.

Producers and consumers whose service is not written yet are skipped, naming what is missing.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
from datetime import UTC
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from shared.envelope import event_json_schema, from_kafka, new_event, to_kafka

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "asyncapi.py"
REGENERATE = "uv run python tools/asyncapi.py > asyncapi.yaml"


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simpul_tools_asyncapi", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


tool = _load_tool()
CATALOGUE = tool.load_catalogue()


@pytest.fixture(scope="module")
def generated() -> str:
    return tool.render(CATALOGUE)


@pytest.fixture(scope="module")
def document(generated: str) -> dict[str, Any]:
    return yaml.safe_load(generated)


# --- (a) the committed document is the code's -----------------------------------------------


def test_committed_document_is_current(generated: str) -> None:
    committed = (ROOT / "asyncapi.yaml").read_text() if (ROOT / "asyncapi.yaml").exists() else ""
    assert committed == generated, (
        f"asyncapi.yaml does not match the services' events.py/consumers.py: run `{REGENERATE}` "
        "and commit the result"
    )


@pytest.mark.parametrize("service", tool.SERVICES)
def test_every_service_is_documented(service: str, document: dict[str, Any]) -> None:
    if service in CATALOGUE.absent:
        pytest.skip(f"{service} is not written yet: no module {CATALOGUE.absent[service]}")
    for published in (p for p in CATALOGUE.published if p.service == service):
        message = document["components"]["messages"][tool.ident(published.type)]
        assert message["name"] == published.type
        channel = document["channels"][tool.ident(published.topic)]
        assert channel["address"] == published.topic
        send = document["operations"][f"{service}_send_{tool.ident(published.topic)}"]
        assert send["action"] == "send"


# --- (b) structurally valid AsyncAPI 3.0.0 ------------------------------------------------------

# Fixed fields of the AsyncAPI 3.0.0 objects the generator writes (spec §3 "Schema").
ROOT_FIELDS = {
    "asyncapi",
    "id",
    "info",
    "servers",
    "defaultContentType",
    "channels",
    "operations",
    "components",
}
INFO_FIELDS = {
    "title",
    "version",
    "description",
    "termsOfService",
    "contact",
    "license",
    "tags",
    "externalDocs",
}
SERVER_FIELDS = {
    "host",
    "protocol",
    "protocolVersion",
    "pathname",
    "description",
    "title",
    "summary",
    "variables",
    "security",
    "tags",
    "externalDocs",
    "bindings",
}
CHANNEL_FIELDS = {
    "address",
    "messages",
    "title",
    "summary",
    "description",
    "servers",
    "parameters",
    "tags",
    "externalDocs",
    "bindings",
}
OPERATION_FIELDS = {
    "action",
    "channel",
    "title",
    "summary",
    "description",
    "security",
    "tags",
    "externalDocs",
    "bindings",
    "traits",
    "messages",
    "reply",
}
MESSAGE_FIELDS = {
    "headers",
    "payload",
    "correlationId",
    "contentType",
    "name",
    "title",
    "summary",
    "description",
    "tags",
    "externalDocs",
    "bindings",
    "examples",
    "traits",
}
COMPONENT_FIELDS = {
    "schemas",
    "servers",
    "channels",
    "operations",
    "messages",
    "securitySchemes",
    "serverVariables",
    "parameters",
    "correlationIds",
    "replies",
    "replyAddresses",
    "externalDocs",
    "tags",
    "operationTraits",
    "messageTraits",
    "serverBindings",
    "channelBindings",
    "operationBindings",
    "messageBindings",
}
CORRELATION_ID_FIELDS = {"description", "location"}
TAG_FIELDS = {"name", "description", "externalDocs"}
# Kafka bindings 0.5.0
KAFKA_CHANNEL_BINDING = {"topic", "partitions", "replicas", "topicConfiguration", "bindingVersion"}
KAFKA_OPERATION_BINDING = {"groupId", "clientId", "bindingVersion"}
KAFKA_MESSAGE_BINDING = {
    "key",
    "schemaIdLocation",
    "schemaIdPayloadEncoding",
    "schemaLookupStrategy",
    "bindingVersion",
}
OBJECT_ID = re.compile(r"^[A-Za-z0-9_\-]+$")
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9\.\-_]+$")
RUNTIME_EXPRESSION = re.compile(r"^\$message\.(header|payload)(#(/[^/]*)*)?$")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are generated, got {ref}"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def _refs(node: Any, path: str = "#") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append((path, node["$ref"]))
        for key, value in node.items():
            found.extend(_refs(value, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_refs(value, f"{path}/{index}"))
    return found


def _unknown(obj: dict[str, Any], allowed: set[str]) -> set[str]:
    return {key for key in obj if key not in allowed and not key.startswith("x-")}


def asyncapi3_problems(doc: dict[str, Any]) -> list[str]:
    """Where ``doc`` breaks the AsyncAPI 3.0.0 rules listed in this module's docstring."""
    problems: list[str] = []

    def check(condition: bool, message: str) -> None:
        if not condition:
            problems.append(message)

    def deref(node: Any) -> Any:
        return _resolve(doc, node["$ref"]) if isinstance(node, dict) and "$ref" in node else node

    check(doc.get("asyncapi") == "3.0.0", "asyncapi must be '3.0.0'")
    check(not _unknown(doc, ROOT_FIELDS), f"unknown root fields {_unknown(doc, ROOT_FIELDS)}")
    info = doc.get("info", {})
    check(
        isinstance(info.get("title"), str) and isinstance(info.get("version"), str),
        "info.title and info.version are required strings",
    )
    check(not _unknown(info, INFO_FIELDS), f"unknown info fields {_unknown(info, INFO_FIELDS)}")
    check(isinstance(doc.get("defaultContentType", ""), str), "defaultContentType must be a string")

    for name, server in doc.get("servers", {}).items():
        check(OBJECT_ID.match(name) is not None, f"server id {name!r}")
        check(
            isinstance(server.get("host"), str) and isinstance(server.get("protocol"), str),
            f"server {name}: host and protocol are required",
        )
        check(
            not _unknown(server, SERVER_FIELDS),
            f"server {name}: unknown {_unknown(server, SERVER_FIELDS)}",
        )

    for path, ref in _refs(doc):
        try:
            _resolve(doc, ref)
        except (KeyError, IndexError, TypeError, AssertionError):
            problems.append(f"{path}: $ref {ref} does not resolve")
    if problems:
        return problems  # the checks below follow references

    for channel_id, channel in doc.get("channels", {}).items():
        where = f"channel {channel_id}"
        check(
            OBJECT_ID.match(channel_id) is not None, f"{where}: id must match {OBJECT_ID.pattern}"
        )
        check(
            not _unknown(channel, CHANNEL_FIELDS),
            f"{where}: unknown {_unknown(channel, CHANNEL_FIELDS)}",
        )
        check(
            channel.get("address") is None or isinstance(channel["address"], str),
            f"{where}: address",
        )
        for message_id, message in channel.get("messages", {}).items():
            check(OBJECT_ID.match(message_id) is not None, f"{where}: message id {message_id!r}")
            check(
                isinstance(deref(message), dict), f"{where}: message {message_id} is not an object"
            )
        kafka = channel.get("bindings", {}).get("kafka", {})
        check(not _unknown(kafka, KAFKA_CHANNEL_BINDING), f"{where}: kafka binding {set(kafka)}")

    for operation_id, operation in doc.get("operations", {}).items():
        where = f"operation {operation_id}"
        check(
            OBJECT_ID.match(operation_id) is not None, f"{where}: id must match {OBJECT_ID.pattern}"
        )
        check(
            not _unknown(operation, OPERATION_FIELDS),
            f"{where}: unknown {_unknown(operation, OPERATION_FIELDS)}",
        )
        check(
            operation.get("action") in {"send", "receive"}, f"{where}: action must be send|receive"
        )
        channel_ref = operation.get("channel", {}).get("$ref", "")
        check(
            channel_ref.startswith("#/channels/"), f"{where}: channel must reference #/channels/..."
        )
        for message in operation.get("messages", []):
            # Spec: "a subset of the messages defined in the channel referenced in this operation"
            check(
                message.get("$ref", "").startswith(channel_ref + "/messages/"),
                f"{where}: message {message} is not one of {channel_ref}'s messages",
            )
        for tag in operation.get("tags", []):
            check("name" in tag and not _unknown(tag, TAG_FIELDS), f"{where}: tag {tag}")
        kafka = operation.get("bindings", {}).get("kafka", {})
        check(not _unknown(kafka, KAFKA_OPERATION_BINDING), f"{where}: kafka binding {set(kafka)}")

    components = doc.get("components", {})
    check(
        not _unknown(components, COMPONENT_FIELDS),
        f"unknown components {_unknown(components, COMPONENT_FIELDS)}",
    )
    for section, entries in components.items():
        for key in entries:
            check(COMPONENT_KEY.match(key) is not None, f"components.{section} key {key!r}")
    for name, correlation in components.get("correlationIds", {}).items():
        check(not _unknown(correlation, CORRELATION_ID_FIELDS), f"correlationId {name}: fields")
        check(
            RUNTIME_EXPRESSION.match(correlation.get("location", "")) is not None,
            f"correlationId {name}: location must be a runtime expression",
        )
    for name, message in components.get("messages", {}).items():
        where = f"message {name}"
        check(
            not _unknown(message, MESSAGE_FIELDS),
            f"{where}: unknown {_unknown(message, MESSAGE_FIELDS)}",
        )
        if "headers" in message:
            check(
                deref(message["headers"]).get("type") == "object",
                f"{where}: headers must be an object schema",
            )
        check("payload" in message, f"{where}: has no payload")
        kafka = message.get("bindings", {}).get("kafka", {})
        check(not _unknown(kafka, KAFKA_MESSAGE_BINDING), f"{where}: kafka binding {set(kafka)}")
        if "correlationId" in message:
            check(
                "location" in deref(message["correlationId"]),
                f"{where}: correlationId has no location",
            )
    # The default schema format is the AsyncAPI Schema, a superset of JSON Schema draft-07.
    schemas = [*components.get("schemas", {}).values()]
    schemas += [
        m[k]
        for m in components.get("messages", {}).values()
        for k in ("headers", "payload")
        if k in m
    ]
    for schema in schemas:
        try:
            jsonschema.Draft7Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            problems.append(f"invalid schema {exc.message}")
    return problems


def test_document_is_valid_asyncapi_3(document: dict[str, Any]) -> None:
    assert asyncapi3_problems(document) == []


def test_structural_check_catches_mistakes(document: dict[str, Any]) -> None:
    """The validator above is not vacuous: typical mistakes are reported."""
    broken = yaml.safe_load(yaml.safe_dump(document))
    operation = next(iter(broken["operations"].values()))
    operation["action"] = "publish"  # AsyncAPI 2 vocabulary
    operation["messages"] = [{"$ref": "#/channels/nowhere/messages/nothing"}]
    broken["channels"]["bad.id"] = {"adress": "typo"}
    problems = asyncapi3_problems(broken)
    assert any("does not resolve" in p for p in problems), problems
    del operation["messages"]
    problems = asyncapi3_problems(broken)
    assert any("action must be" in p for p in problems)
    assert any("channel bad.id" in p for p in problems)


# --- (c) events written from the document fit it ------------------------------------------------
#
# tests/contract/examples/<type>.json holds one CloudEvent per documented type, written by hand the
# way a consumer's author would from reading asyncapi.yaml (never generated from the models). They
# are checked against the committed document, and each consumer's own model must read them.

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
EXAMPLES: dict[str, dict[str, Any]] = {
    path.name.removesuffix(".json"): json.loads(path.read_text())
    for path in sorted(EXAMPLES_DIR.glob("*.json"))
}
# CloudEvents Kafka binding, binary content mode (§3.2): each attribute is a header.
HEADER_OF = {
    "id": "ce_id",
    "source": "ce_source",
    "type": "ce_type",
    "specversion": "ce_specversion",
    "time": "ce_time",
    "subject": "ce_subject",
    "datacontenttype": "content-type",
    "traceparent": "traceparent",
}


@pytest.fixture(scope="module")
def committed_document() -> dict[str, Any]:
    """What a consumer's author reads: the committed asyncapi.yaml, not the code."""
    return yaml.safe_load((ROOT / "asyncapi.yaml").read_text())


def documented_types(doc: dict[str, Any]) -> set[str]:
    """The event types of the document's event channels (dead-letter channels carry none)."""
    return {
        _resolve(doc, ref["$ref"])["name"]
        for channel in doc["channels"].values()
        if not channel["address"].endswith(".dlq")
        for ref in channel["messages"].values()
    }


def _message(doc: dict[str, Any], event_type: str) -> dict[str, Any]:
    (message,) = [m for m in doc["components"]["messages"].values() if m["name"] == event_type]
    return message


def _kafka_headers(example: dict[str, Any]) -> dict[str, str]:
    return {HEADER_OF[name]: value for name, value in example.items() if name != "data"}


def example_errors(
    doc: dict[str, Any], event_type: str, example: dict[str, Any]
) -> dict[str, list[jsonschema.ValidationError]]:
    """Where ``example`` breaks the documented payload and headers schemas of ``event_type``."""
    message = _message(doc, event_type)
    found: dict[str, list[jsonschema.ValidationError]] = {}
    for part, instance in (("payload", example["data"]), ("headers", _kafka_headers(example))):
        validator = jsonschema.Draft202012Validator(
            {**message[part], "components": doc["components"]},
            format_checker=jsonschema.FormatChecker(),
        )
        found[part] = list(validator.iter_errors(instance))
    return found


def _keywords(errors: list[jsonschema.ValidationError]) -> set[str]:
    """The failing keywords, including those inside anyOf branches (nullable fields)."""
    return {str(e.validator) for e in errors} | {
        keyword for e in errors for keyword in _keywords(list(e.context or ()))
    }


def test_every_documented_type_has_an_example(committed_document: dict[str, Any]) -> None:
    documented = documented_types(committed_document)
    assert documented, "no event types found in asyncapi.yaml"
    missing = sorted(documented - set(EXAMPLES))
    assert not missing, (
        f"write an example event for {missing} in tests/contract/examples/<type>.json, "
        "from asyncapi.yaml as a consumer would"
    )
    stale = sorted(set(EXAMPLES) - documented)
    assert not stale, f"examples of types asyncapi.yaml does not document: {stale}"


@pytest.mark.parametrize("event_type", sorted(EXAMPLES))
def test_example_fits_the_document(event_type: str, committed_document: dict[str, Any]) -> None:
    example = EXAMPLES[event_type]
    assert example["type"] == event_type, f"{event_type}.json holds a {example['type']}"
    errors = example_errors(committed_document, event_type, example)
    assert {part: [e.message for e in errs] for part, errs in errors.items()} == {
        "payload": [],
        "headers": [],
    }
    # The record it describes is one the consumers' runner accepts as a CloudEvent.
    record_headers = [(name, value.encode()) for name, value in _kafka_headers(example).items()]
    event = from_kafka(json.dumps(example["data"]).encode(), record_headers)
    assert (event.type, event.id, event.data) == (example["type"], example["id"], example["data"])


DROP = object()


def broken(event_type: str, what: str, where: str, value: Any, keyword: str) -> Any:
    """A mutation of ``event_type``'s example: ``where`` (``data.x`` or an attribute) set to
    ``value`` (or dropped), and the JSON Schema keyword of the document that must refuse it."""
    return pytest.param(event_type, where, value, keyword, id=f"{event_type}:{what}")


BROKEN = [
    # A required field left out.
    broken("registry.person.registered.v1", "no person_id", "data.person_id", DROP, "required"),
    broken("registry.person.died.v1", "no death_date", "data.death_date", DROP, "required"),
    broken(
        "registry.person.moved.v1",
        "no from_village_code",
        "data.from_village_code",
        DROP,
        "required",
    ),
    broken(
        "registry.household.split.v1",
        "no new_household_id",
        "data.new_household_id",
        DROP,
        "required",
    ),
    # Nullable is not optional: the complaint's person_id is always sent, maybe as null.
    broken("complaints.complaint.filed.v1", "no person_id", "data.person_id", DROP, "required"),
    # A value outside an enumeration.
    broken("registry.person.updated.v1", "sex X", "data.sex", "X", "enum"),
    broken("registry.person.died.v1", "status dead", "data.status", "dead", "enum"),
    broken("registry.person.died.v1", "source neighbour", "data.source", "neighbour", "enum"),
    broken("registry.household.registered.v1", "status closed", "data.status", "closed", "enum"),
    # The programmes are catalogue data, so a code is checked by its form, not a list.
    broken("programs.enrolment.created.v1", "programme pkh", "data.programme", "pkh", "pattern"),
    broken("referrals.referral.created.v1", "service spa", "data.service_type", "spa", "enum"),
    broken("complaints.complaint.filed.v1", "channel email", "data.channel", "email", "enum"),
    # Ranges, patterns and formats.
    broken("registry.household.decile_changed.v1", "decile 11", "data.decile", 11, "maximum"),
    broken(
        "registry.person.registered.v1",
        "8-digit village",
        "data.village_code",
        "17710110",
        "pattern",
    ),
    broken("referrals.referral.created.v1", "lower case", "data.to_agency", "dinkes", "pattern"),
    broken("registry.person.moved.v1", "d/m/y", "data.birth_date", "14/03/1987", "format"),
    broken("registry.household.merged.v1", "short ids", "data.person_ids", ["3f2b8c1e"], "format"),
    broken("referrals.referral.created.v1", "no zone", "data.due_at", "2026-11-18 09:05", "format"),
    # No undocumented field, least of all a NIK.
    broken(
        "registry.person.registered.v1",
        "nik",
        "data.nik",
        "1771014403870001",
        "additionalProperties",
    ),
    # The envelope, as ce_* headers.
    broken(
        "registry.person.registered.v1", "source of programs", "source", "/simpul/programs", "const"
    ),
    broken("programs.enrolment.created.v1", "other type", "type", "programs.x.v1", "const"),
    broken("complaints.complaint.filed.v1", "specversion 0.3", "specversion", "0.3", "const"),
    broken("referrals.referral.created.v1", "no id", "id", DROP, "required"),
]


@pytest.mark.parametrize(("event_type", "where", "value", "keyword"), BROKEN)
def test_a_broken_example_is_refused(
    event_type: str, where: str, value: Any, keyword: str, committed_document: dict[str, Any]
) -> None:
    example = copy.deepcopy(EXAMPLES[event_type])
    assert example_errors(committed_document, event_type, example) == {
        "payload": [],
        "headers": [],
    }
    *parents, name = where.split(".")
    target = example
    for parent in parents:
        target = target[parent]
    if value is DROP:
        del target[name]
    else:
        target[name] = value
    refused = example_errors(committed_document, event_type, example)[
        "payload" if parents == ["data"] else "headers"
    ]
    assert refused, f"asyncapi.yaml accepts {event_type} with {where} = {value!r}"
    assert keyword in _keywords(refused), [e.message for e in refused]


# --- (d) producers and consumers agree ------------------------------------------------------------


def strategy_for(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of a pydantic-generated JSON Schema (the subset event payloads use)."""
    if "$ref" in schema:
        return strategy_for(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([strategy_for(branch, defs) for branch in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return strategy_for(schema["allOf"][0], defs)
    kind = schema.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**31) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**31 + 1) - 1)
        return st.integers(min_value=low, max_value=high)
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "string":
        return _string_strategy(schema)
    if kind == "array":
        return st.lists(
            strategy_for(schema.get("items", {}), defs),
            min_size=schema.get("minItems", 0),
            max_size=schema.get("maxItems", schema.get("minItems", 0) + 4),
        )
    if kind == "object" and "properties" in schema:
        required = set(schema.get("required", ()))
        properties = {name: strategy_for(sub, defs) for name, sub in schema["properties"].items()}
        return st.fixed_dictionaries(
            {name: s for name, s in properties.items() if name in required},
            optional={name: s for name, s in properties.items() if name not in required},
        )
    raise NotImplementedError(f"teach strategy_for this schema: {schema}")


def _string_strategy(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    formats: dict[str, st.SearchStrategy[str]] = {
        "uuid": st.uuids().map(str),
        "date": st.dates().map(lambda d: d.isoformat()),
        "date-time": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
        "email": st.emails(),
    }
    if "format" in schema:
        return formats[schema["format"]]
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: len(s) >= low and (high is None or len(s) <= high)
        )
    return st.text(min_size=low, max_size=high if high is not None else low + 40)


def producer_payloads(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON payloads the producer's model emits: generated from its schema, validated by it."""
    schema = event_json_schema(model)
    return strategy_for(schema, schema.get("$defs", {}))


def _valid_producer_payload(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    try:
        instance = model.model_validate(data)
    except ValidationError:
        reject()  # the schema is looser than the model (a validator); try another
    return instance.model_dump(mode="json")


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

PUBLISHED = [pytest.param(p, id=p.type) for p in CATALOGUE.published]


@pytest.mark.parametrize("traceparent", [None, "00-" + "a" * 32 + "-" + "b" * 16 + "-01"])
@pytest.mark.parametrize("published", PUBLISHED)
def test_envelope_headers_fit_the_document(
    published: Any, traceparent: str | None, document: dict[str, Any]
) -> None:
    """The ``ce_*`` headers ``shared.envelope.to_kafka`` writes fit the documented headers."""
    event = new_event(
        source=published.source or f"/simpul/{published.service}",
        type=published.type,
        subject="0b0f8c1e-3f6e-4a53-9a51-2f1d3c4b5a69",
        data=EXAMPLES.get(published.type, {}).get("data", {}),
        traceparent=traceparent,
    )
    record = to_kafka(event, topic=published.topic, key=event.subject or "")
    headers = {name: value.decode() for name, value in record.headers}
    message = _message(document, published.type)
    jsonschema.Draft202012Validator(
        {**message["headers"], "components": document["components"]}
    ).validate(headers)


def _subscriptions() -> list[Any]:
    return [
        pytest.param(sub, event_type, id=f"{sub.group}:{event_type}")
        for sub in CATALOGUE.subscriptions
        for event_type in sub.handlers
    ]


def _skip_if_producer_not_written(event_type: str) -> None:
    producer = event_type.partition(".")[0]
    if producer in CATALOGUE.absent:
        pytest.skip(
            f"{event_type} waits for {producer}: no module {CATALOGUE.absent[producer]} yet"
        )


@pytest.mark.parametrize(("subscription", "event_type"), _subscriptions())
def test_handled_type_is_published_on_a_subscribed_topic(
    subscription: Any, event_type: str
) -> None:
    producers = CATALOGUE.producers_of(event_type)
    if not producers:
        _skip_if_producer_not_written(event_type)
    assert producers, f"{subscription.group} handles {event_type}, which no service publishes"
    topics = sorted({p.topic for p in producers})
    assert set(topics) & set(subscription.topics), (
        f"{subscription.group} handles {event_type} but subscribes to {list(subscription.topics)}; "
        f"it is published on {topics}"
    )


COMPATIBILITY = [
    pytest.param(sub, producer, id=f"{sub.group}<-{producer.service}:{producer.type}")
    for sub in CATALOGUE.subscriptions
    for producer in CATALOGUE.published
    if producer.type in sub.handlers and producer.topic in sub.topics
]


@pytest.mark.parametrize(("subscription", "producer"), COMPATIBILITY)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_consumer_model_reads_producer_events(
    subscription: Any, producer: Any, data: st.DataObject
) -> None:
    payload = _valid_producer_payload(producer.model, data.draw(producer_payloads(producer.model)))
    consumer_model = subscription.handlers[producer.type]
    try:
        consumer_model.model_validate(payload)
    except ValidationError as exc:
        pytest.fail(
            f"{subscription.group}'s {consumer_model.__name__} rejects a valid "
            f"{producer.type} from {producer.service}:\n{payload}\n{exc}"
        )


EXAMPLE_READERS = [
    pytest.param(sub, event_type, id=f"{sub.group}:{event_type}")
    for sub in CATALOGUE.subscriptions
    for event_type in sorted(sub.handlers)
    if event_type in EXAMPLES
]


@pytest.mark.parametrize(("subscription", "event_type"), EXAMPLE_READERS)
def test_consumer_model_reads_the_example(subscription: Any, event_type: str) -> None:
    """Each consumer's own (tolerant-reader) model reads the event written from the document."""
    consumer_model = subscription.handlers[event_type]
    try:
        consumer_model.model_validate(EXAMPLES[event_type]["data"])
    except ValidationError as exc:
        pytest.fail(
            f"{subscription.group}'s {consumer_model.__name__} rejects the documented example "
            f"tests/contract/examples/{event_type}.json:\n{exc}"
        )
