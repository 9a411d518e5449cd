"""Errors as RFC 9457 ``application/problem+json``.

Every error a client can see is one of these, with a stable ``type`` URI and a human ``detail``::

    ProblemError                      (status, type, title; one handler renders them all)
    ├── BadRequest                    400  bad header values (Idempotency-Key)
    │   └── MalformedBody             400  a body that cannot be parsed (JSON, UTF-8, multipart)
    ├── Unauthorized                  401  missing, malformed, expired or forged token
    ├── Forbidden                     403  token lacks the scope
    ├── NotFound                      404  no such record, or not visible to the caller
    ├── Conflict                      409  state conflict, idempotent request still in flight
    │   └── TransactionConflict       409  serialization failure or deadlock: retry
    ├── PayloadTooLarge               413  body over the service's limit
    ├── UnprocessableContent          422  semantic errors, Idempotency-Key reused with another body
    └── ServiceUnavailable            503  a dependency (database, broker) is down
        └── DatabaseUnavailable       503  no connection, or it broke (Retry-After)

Services subclass these in their ``errors.py`` (``PersonNotFound(NotFound)``). FastAPI's
``RequestValidationError`` becomes a 422 whose ``errors`` list names each field; a body FastAPI
cannot parse is a 400 ``malformed-body`` however it fails (bad JSON, a NUL or control character,
invalid UTF-8, nesting too deep, a broken multipart form); an unexpected exception becomes a 500
problem without a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_SCHEMA_REF",
    "STATEMENT_TIMEOUT",
    "BadRequest",
    "BodySizeLimitMiddleware",
    "Conflict",
    "DatabaseUnavailable",
    "FieldError",
    "Forbidden",
    "MalformedBody",
    "NotFound",
    "PayloadTooLarge",
    "Problem",
    "ProblemError",
    "ServiceUnavailable",
    "TransactionConflict",
    "Unauthorized",
    "UnprocessableContent",
    "install_problem_handlers",
    "is_unreachable_database",
    "problem_responses",
    "sqlstate",
]

PROBLEM_JSON = "application/problem+json"
# Where the ``Problem`` schema lives in every service's OpenAPI document (put there by
# ``shared.openapi.complete_openapi``, which create_service_app installs).
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
TYPE_BASE = "https://simpul.kemensos.go.id/problems/"
log = logging.getLogger("shared.errors")


class FieldError(BaseModel):
    field: str = Field(examples=["body.nik"])
    message: str = Field(examples=["String should have at least 16 characters"])
    type: str = Field(examples=["string_too_short"])


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(examples=[TYPE_BASE + "validation-error"])
    title: str = Field(examples=["Request is not valid"])
    status: int = Field(examples=[422])
    detail: str | None = Field(
        default=None, examples=["body.nik: String should have at least 16 characters"]
    )
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    status: ClassVar[int] = 500
    type: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extensions = extensions
        self.headers: dict[str, str] = {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.type,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(ProblemError):
    status = 400
    type = "bad-request"
    title = "Bad request"


class MalformedBody(BadRequest):
    type = "malformed-body"
    title = "The request body cannot be parsed"


class Unauthorized(ProblemError):
    status = 401
    type = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, **extensions)
        self.headers["WWW-Authenticate"] = 'Bearer realm="simpul"'


class Forbidden(ProblemError):
    status = 403
    type = "forbidden"
    title = "Not allowed"


class NotFound(ProblemError):
    status = 404
    type = "not-found"
    title = "Not found"


class Conflict(ProblemError):
    status = 409
    type = "conflict"
    title = "Conflict"


class PayloadTooLarge(ProblemError):
    status = 413
    type = "payload-too-large"
    title = "Request body too large"


class UnprocessableContent(ProblemError):
    status = 422
    type = "unprocessable"
    title = "Request cannot be processed"


class ServiceUnavailable(ProblemError):
    status = 503
    type = "unavailable"
    title = "Service unavailable"


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], headers=headers, media_type=PROBLEM_JSON)


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the problem schema and its meanings.

    The schema is documented under ``application/problem+json`` only, the one content type
    these answers have (a ``model`` would put it under the route's ``application/json``)."""
    documented: dict[int | str, dict[str, Any]] = {}
    every: tuple[type[ProblemError], ...] = (UnprocessableContent, *errors)
    for error in every:
        entry = documented.setdefault(
            error.status,
            {
                "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
                "description": "",
            },
        )
        meaning = f"`{error.type}`: {error.title}"
        entry["description"] = "; ".join(filter(None, [entry["description"], meaning]))
    return documented


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(exc.to_problem(request.url.path), exc.headers)


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": _field_name(err.get("loc", ())),
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    malformed = any(err["type"] == "json_invalid" for err in errors)
    body = {
        "type": TYPE_BASE + (MalformedBody.type if malformed else "validation-error"),
        "title": MalformedBody.title if malformed else "Request is not valid",
        "status": MalformedBody.status if malformed else 422,
        "detail": "; ".join(f"{e['field']}: {e['message']}" for e in errors[:10]),
        "instance": request.url.path,
        "errors": errors,
    }
    return problem_response(body)


def _unparsable_body(exc: StarletteHTTPException) -> str:
    """What was wrong with a body FastAPI or Starlette could not parse (their only 400s)."""
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "the body nests arrays or objects too deeply"
    return str(exc.detail)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's "There was an error parsing the body" (invalid UTF-8, deep nesting) and
        # Starlette's multipart errors: the same problem as JSON that does not parse.
        error = MalformedBody(_unparsable_body(exc))
        return problem_response(error.to_problem(request.url.path), dict(exc.headers or {}))
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code, "http-error"
    )
    body = {
        "type": TYPE_BASE + slug,
        "title": str(exc.detail),
        "status": exc.status_code,
        "instance": request.url.path,
    }
    return problem_response(body, dict(exc.headers or {}))


# The database cannot serve the request now: connection exceptions (class 08), the server
# shutting down or starting (57P01-57P03), too many connections (53300).
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
STATEMENT_TIMEOUT = "57014"  # query_canceled: statement_timeout (or a cancel request)
# Two transactions collided (serialization failure, deadlock): the same request may succeed now.
_RETRYABLE_CONFLICT_STATES = ("40001", "40P01")


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a database error ('' for other errors)."""
    # Through SQLAlchemy the driver's error is exc.orig; raw asyncpg raises it directly.
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    return str(getattr(driver_error, "sqlstate", "") or "")


def is_unreachable_database(exc: BaseException) -> bool:
    """True for failures of reaching the database rather than of the statement sent."""
    if isinstance(exc, OSError | SQLAlchemyTimeoutError):  # refused, connect timeout, pool
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return sqlstate(exc).startswith(_UNAVAILABLE_STATES)


class TransactionConflict(Conflict):
    type = "transaction-conflict"
    title = "The change collided with a concurrent one and was not made"


class DatabaseUnavailable(ServiceUnavailable):
    type = "database-unavailable"
    title = "The database cannot be reached"


def _database_unavailable() -> ProblemError:
    error = DatabaseUnavailable(
        "nothing was confirmed; retry with the same Idempotency-Key to be safe"
    )
    error.headers["Retry-After"] = "5"
    return error


def _database_problem(exc: Exception) -> ProblemError | None:
    """What a database error means for the client, or None for a defect of ours (a 500)."""
    state = sqlstate(exc)
    if state in ("22021", "22P05"):
        return UnprocessableContent(
            "text must not contain NUL (\\u0000) or characters outside UTF-8"
        )
    if state.startswith("22"):
        return UnprocessableContent("a value is out of range for its field")
    if state.startswith("23"):
        driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
        cause = getattr(driver_error, "__cause__", None) or driver_error
        constraint = getattr(cause, "constraint_name", None)
        return Conflict("the change conflicts with existing data", constraint=constraint)
    if state in _RETRYABLE_CONFLICT_STATES:
        conflict = TransactionConflict("nothing was changed; the same request may be retried")
        conflict.headers["Retry-After"] = "1"
        return conflict
    if state == STATEMENT_TIMEOUT or is_unreachable_database(exc):
        return _database_unavailable()
    return None


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    """Input PostgreSQL refuses is the client's problem, and an unreachable database is a 503,
    not a 500 (also when it is the COMMIT that fails: it runs before the answer is sent).

    Class 22 (data exception: a NUL character in text, a number or date out of range) becomes
    422; class 23 (a constraint no service check caught first, e.g. a race, or a deferred one
    at COMMIT) becomes 409, as do serialization failures and deadlocks.
    """
    error = _database_problem(exc)
    if error is None:
        return await _on_unexpected(request, exc)
    log.info(
        "http.database_refused",
        extra={"problem": error.type, "path": request.url.path, "error": type(exc).__name__},
    )
    return problem_response(error.to_problem(request.url.path), error.headers)


async def _on_database_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """No connection at all (refused, reset, pool exhausted past its timeout): the only
    connections a request opens are to its own database."""
    log.warning("http.database_unreachable", extra={"path": request.url.path, "error": repr(exc)})
    error = _database_unavailable()
    return problem_response(error.to_problem(request.url.path), error.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("http.unhandled_error", extra={"path": request.url.path})
    return problem_response(
        ProblemError("An unexpected error occurred").to_problem(request.url.path)
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(asyncpg.PostgresError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_unreachable)
    app.add_exception_handler(SQLAlchemyTimeoutError, _on_database_unreachable)
    app.add_exception_handler(Exception, _on_unexpected)


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    ``limits`` raises (or lowers) the limit under a path prefix, e.g. ``{"/v1/imports": 512 MiB}``
    for file uploads; the longest matching prefix wins, matched on whole path segments.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Longest prefix first, without a trailing slash.
        self.limits = sorted(
            ((prefix.rstrip("/"), limit) for prefix, limit in (limits or {}).items()),
            key=lambda item: len(item[0]),
            reverse=True,
        )

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path == prefix or path.startswith(prefix + "/"):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await self._reject(scope, send, max_bytes)
                return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._reject(scope, send, max_bytes)

    async def _reject(self, scope: Scope, send: Send, max_bytes: int) -> None:
        error = PayloadTooLarge(f"the body exceeds {max_bytes} bytes")
        response = problem_response(error.to_problem(scope.get("path")))
        await response(scope, _empty_receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive``; an HTTPException so FastAPI's body parser lets it through."""

    def __init__(self) -> None:
        super().__init__(413, "Request body too large")


async def _empty_receive() -> Message:
    return {"type": "http.disconnect"}
