"""What ``/spdci/v1.0.0`` answers when something fails around the routes' own checks.

An SPDCI client reads the spec's ``Response`` (``ack_status: "ERR"`` with an ``err.*`` code) on
every status, so under the SPDCI base path these failures are answered in that shape instead of
the service's problem+json:

* no such endpoint -> 404 ``err.request.not_found``, naming the path and listing the ones this
  registry serves (``on-search`` and the other callbacks are the *sender's* endpoints);
  a served path with another method -> 405 ``err.request.bad``;
* the database cannot be reached (connection refused, dropped, no free connection) -> 503
  ``err.service.unavailable``, so a client retries later instead of reporting a bug;
* a statement ran past its timeout (an SPDCI search, ``dci_search_timeout_ms``) -> 504
  ``err.request.timeout``.

The exception reaches these handlers after the request's transaction rolled back, so nothing of
the failed message stays (not even its message id: the client may send it again). Other paths
keep the handlers :func:`shared.service.create_service_app` installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import cast

import asyncpg
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from registry.dci.envelope import EnvelopeError
from registry.dci.inbound import err, settings_of
from shared.errors import STATEMENT_TIMEOUT, is_unreachable_database, sqlstate

__all__ = ["install_error_answers", "is_statement_timeout"]

Handler = Callable[[Request, Exception], Awaitable[Response]]

_RETRY_UNAVAILABLE_SECONDS = 30


def is_statement_timeout(exc: BaseException) -> bool:
    return sqlstate(exc) == STATEMENT_TIMEOUT


def _served_paths(router: APIRouter) -> str:
    return ", ".join(
        f"{'/'.join(sorted(route.methods or ()))} {route.path.removeprefix(router.prefix)}"
        for route in router.routes
        if isinstance(route, APIRoute)
    )


def install_error_answers(app: FastAPI, router: APIRouter) -> None:
    """Answer failures under the SPDCI ``router``'s prefix in the spec's shape; elsewhere as
    before."""
    base_path = router.prefix
    served = _served_paths(router)
    # The handlers create_service_app installed (shared.errors: all async).
    handlers: dict[type[Exception], Handler] = {
        kind: cast(Handler, app.exception_handlers[kind])
        for kind in (StarletteHTTPException, DBAPIError, asyncpg.PostgresError)
    }

    def under_base(request: Request) -> bool:
        path = request.url.path
        return path == base_path or path.startswith(base_path + "/")

    async def on_http_exception(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if under_base(request) and exc.status_code == 404:
            return err(
                EnvelopeError(
                    "err.request.not_found",
                    f"no SPDCI endpoint at {path}; this registry serves {served} under "
                    f"{base_path} (on-search, on-subscribe, on-unsubscribe, notify and "
                    "txn/on-status are called back at the sender's sender_uri, not served here)",
                    status_code=404,
                )
            )
        if under_base(request) and exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "POST")
            return err(
                EnvelopeError(
                    "err.request.bad",
                    f"{request.method} is not served at {path}; use {allowed}",
                    status_code=405,
                    headers={"Allow": allowed},
                )
            )
        return await handlers[StarletteHTTPException](request, exc)

    async def on_database_failure(request: Request, exc: Exception) -> Response:
        if under_base(request) and is_statement_timeout(exc):
            settings = settings_of(request)
            return err(
                EnvelopeError(
                    "err.request.timeout",
                    f"the search ran longer than {settings.dci_search_timeout_ms} ms and was "
                    "stopped; nothing of this message was kept: narrow the query or ask for "
                    "smaller pages, then send it again",
                    status_code=504,
                )
            )
        if under_base(request) and is_unreachable_database(exc):
            return err(
                EnvelopeError(
                    "err.service.unavailable",
                    "the registry's database cannot be reached right now; send the message "
                    "again later (nothing of it was kept)",
                    status_code=503,
                    headers={"Retry-After": str(_RETRY_UNAVAILABLE_SECONDS)},
                )
            )
        fallback = next((handlers[kind] for kind in type(exc).__mro__ if kind in handlers), None)
        if fallback is None:
            raise exc  # the service's handler of last resort (a 500 problem) answers it
        return await fallback(request, exc)

    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    for kind in (DBAPIError, asyncpg.PostgresError, OSError, PoolTimeout):
        app.add_exception_handler(kind, on_database_failure)
