"""What every service's OpenAPI document says beyond what FastAPI derives from each route.

Some answers come from the machinery around the routes rather than from a route, so no route
lists them and a new route would not remember them either. :func:`complete_openapi` adds them
to every operation they can come from, once per document (``create_service_app`` installs it
with :func:`install_openapi_completion`):

* ``400`` ``malformed-body`` on every operation with a request body (JSON that does not parse,
  invalid UTF-8, nesting too deep, a broken multipart form: :mod:`shared.errors`), and
  ``400`` ``bad-request`` on every operation with the ``Idempotency-Key`` header (a key outside
  its 8-255 character rule, :mod:`shared.idempotency`);
* ``413`` ``payload-too-large`` on every operation with a request body (the body limit
  middleware, :class:`shared.errors.BodySizeLimitMiddleware`);
* ``security: []`` on every operation that declares no security requirement: it is public, and
  says so. The others name the bearer scheme with their scopes through
  :func:`shared.auth.require_scope` (or :func:`shared.auth.bearer_token_declared`).

An operation that documents a status itself keeps its own entry (the SPDCI routes answer a
malformed body in their standard's envelope, not as a problem).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shared.errors import (
    PROBLEM_JSON,
    PROBLEM_SCHEMA_REF,
    BadRequest,
    MalformedBody,
    PayloadTooLarge,
    Problem,
)

__all__ = ["complete_openapi", "install_openapi_completion"]

IDEMPOTENCY_HEADER = "idempotency-key"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def _problem_answer(*errors: type[BadRequest | PayloadTooLarge]) -> dict[str, Any]:
    return {
        "description": "; ".join(f"`{error.type}`: {error.title}" for error in errors),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }


def _has_idempotency_key(operation: dict[str, Any]) -> bool:
    return any(
        parameter.get("in") == "header" and parameter.get("name", "").lower() == IDEMPOTENCY_HEADER
        for parameter in operation.get("parameters", [])
    )


def _add_problem_schemas(document: dict[str, Any]) -> None:
    """``Problem`` (and what it refers to) in the components, where ``problem_responses`` and
    the answers added here point."""
    schema = Problem.model_json_schema(
        ref_template="#/components/schemas/{model}", mode="serialization"
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in schema.pop("$defs", {}).items():
        schemas.setdefault(name, definition)
    schemas.setdefault("Problem", schema)


def complete_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """Add the answers and requirements described above to ``document``, in place (applying it
    twice changes nothing)."""
    _add_problem_schemas(document)
    for path_item in document.get("paths", {}).values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            has_body = "requestBody" in operation
            bad_requests: list[type[BadRequest]] = []
            if has_body:
                bad_requests.append(MalformedBody)
            if _has_idempotency_key(operation):
                bad_requests.append(BadRequest)
            if bad_requests:
                responses.setdefault("400", _problem_answer(*bad_requests))
            if has_body:
                responses.setdefault("413", _problem_answer(PayloadTooLarge))
            operation.setdefault("security", [])
    return document


def install_openapi_completion(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (computed once, like FastAPI's)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
