"""The SPDCI Social Registry OpenAPI document, read from this package, and validation against it.

Requests and responses are checked by ``openapi-schema-validator`` (OpenAPI 3.0 dialect) against
the schemas of the file itself, resolved with ``referencing``, so nothing here restates the
standard by hand. Paths are the spec's own (``/registry/sync/search``), without the registry's
``/spdci/v1.0.0`` prefix.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import yaml
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

__all__ = [
    "SPEC_FILE",
    "SpecProblem",
    "SpecViolation",
    "document",
    "example",
    "text",
    "validate_request",
    "validate_response",
    "validate_schema",
]

SPEC_FILE = "social_api_v1.0.0.yaml"
_URI = "urn:spdci:social-registry:1.0.0"
# The identifier value is `allOf[..., oneOf[string, integer, number, boolean, object]]`: every
# integer is also a number, so `oneOf` rejects `1980`. The fix upstream agreed on is `anyOf`
# (spdci/api-standards#46); applied in memory, the file stays as published.
_VALUE_ONE_OF = ("components", "schemas", "SubscriptionInfo", "properties", "filter", "anyOf", 1)


@dataclass(frozen=True)
class SpecProblem:
    """One way a body departs from the spec: where (JSON path) and what."""

    path: str
    message: str


class SpecViolation(AssertionError):
    """A body the registry produced does not match the spec (a bug, raised in tests)."""

    def __init__(self, where: str, problems: list[SpecProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p.path}: {p.message}" for p in problems)
        super().__init__(f"{where} does not match the SPDCI spec:\n{lines}")


@functools.cache
def text() -> str:
    """The spec file as published."""
    return files(__package__).joinpath(SPEC_FILE).read_text(encoding="utf-8")


@functools.cache
def document() -> dict[str, Any]:
    """The parsed OpenAPI document (with the in-memory defect fixes)."""
    spec: dict[str, Any] = yaml.safe_load(text())
    node: Any = spec
    for key in _VALUE_ONE_OF:
        node = node[key]
    value = node["properties"]["value"]["allOf"][1]
    value["anyOf"] = value.pop("oneOf")
    # NotifyEventRequest declares ``reg_records`` an object where every other message has an
    # array of records (a known defect, see SOURCE.md); the array is the corrected form the
    # registry sends, so it is what a notify is checked against.
    notify_data = spec["components"]["schemas"]["NotifyEventRequest"]["properties"]
    records = notify_data["notify_event"]["items"]["properties"]["data"]["properties"]
    records["reg_records"].update({"type": "array", "items": {"type": "object"}})
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry().with_resource(_URI, DRAFT4.create_resource(document()))
    return registry


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _operation(path: str) -> dict[str, Any]:
    operations = document()["paths"]
    if path not in operations:
        raise KeyError(f"the spec has no path {path!r}")
    operation: dict[str, Any] = operations[path]["post"]
    return operation


@functools.cache
def _validator(pointer: str) -> OAS30Validator:
    return OAS30Validator(
        {"$ref": f"{_URI}#/{pointer}"},
        registry=_registry(),
        format_checker=oas30_format_checker,
    )


def _validate(instance: Any, pointer: str) -> list[SpecProblem]:
    validator = _validator(pointer)
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        problems.extend(_leaves(error))
    return problems


def _leaves(error: ValidationError) -> list[SpecProblem]:
    """The most specific reasons: for a failed ``oneOf``/``anyOf``, those of the branch that
    came closest (fewest errors), rather than every branch's."""
    if error.context:
        by_branch: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            by_branch.setdefault(sub.schema_path[0] if sub.schema_path else None, []).append(sub)
        closest = min(by_branch.values(), key=len)
        return [leaf for sub in closest for leaf in _leaves(sub)]
    where = "$" + "".join(
        f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path
    )
    return [SpecProblem(path=where, message=error.message)]


def validate_schema(instance: Any, *parts: str | int) -> list[SpecProblem]:
    """Problems of ``instance`` against the schema at ``parts`` of the document, e.g.
    ``("components", "schemas", "SearchRequest", "properties", "search_request", "items")``."""
    node: Any = document()
    for part in parts:
        node = node[part]  # a KeyError names a path the spec does not have
    return _validate(instance, _pointer(*(str(part) for part in parts)))


def validate_request(path: str, body: Any) -> list[SpecProblem]:
    """Problems of a JSON request ``body`` for POST ``path`` (empty when it conforms)."""
    _operation(path)
    pointer = _pointer(
        "paths", path, "post", "requestBody", "content", "application/json", "schema"
    )
    return _validate(body, pointer)


def _response_pointer(path: str, status: int) -> str | None:
    responses = _operation(path)["responses"]
    key = str(status) if str(status) in responses else "default"
    response = responses[key]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        return _pointer("components", "responses", name, "content", "application/json", "schema")
    if "content" not in response:
        return None
    return _pointer(
        "paths", path, "post", "responses", key, "content", "application/json", "schema"
    )


def validate_response(path: str, body: Any, *, status: int = 200) -> None:
    """Raise :class:`SpecViolation` unless ``body`` is a valid response of POST ``path``.

    ``path`` may also be a callback path the registry calls (``/registry/on-search``,
    ``/registry/notify``...): then ``body`` is checked as that path's request.
    """
    if _operation(path).get("requestBody") and path.rsplit("/", 1)[-1] in _CALLBACKS:
        problems = validate_request(path, body)
    else:
        pointer = _response_pointer(path, status)
        problems = [] if pointer is None else _validate(body, pointer)
    if problems:
        raise SpecViolation(f"POST {path} ({status})", problems)


_CALLBACKS = {"on-search", "on-subscribe", "on-unsubscribe", "notify", "on-status"}


def example(*parts: str | int) -> Any:
    """A copy of the ``example`` value at a place in the spec, e.g. the expression query's."""
    node: Any = document()
    for part in parts:
        node = node[part]
    return copy.deepcopy(node)
