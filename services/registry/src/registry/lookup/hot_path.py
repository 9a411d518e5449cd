"""``GET /v1/persons/by-nik/{nik}`` without FastAPI on its hot path.

Partner agencies verify people one NIK at a time, at rates no other route sees (BPJS checking a
PBI-JK list, a village clerk's counter). Through FastAPI, routing, dependency injection and the
ORM session cost about 0.6 ms of CPU per request, several times the lookup itself (profiled on
the registry app in process). This pure-ASGI layer sits inside the tracing and body-limit
middleware and answers a *well-formed, authorised* request itself, with the very statement the
route runs (:func:`registry.lookup.service.fetch_person`: projection, region and audit in one
statement) on a plain asyncpg pool.

Anything else goes on to the FastAPI route in :mod:`registry.lookup.api`, which owns the
documented answers: no or bad token, a missing scope, a malformed NIK or purpose, extra query
parameters, a database that is down. So every error has one definition, the OpenAPI document is
the route's, and this layer can only ever answer 200 or the route's own 404.
"""

from __future__ import annotations

import asyncio
import logging
import re
from types import SimpleNamespace
from urllib.parse import unquote_plus

import asyncpg
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from registry.errors import PersonNotFound
from registry.fields import NIK_PATTERN
from registry.lookup.service import fetch_person
from shared.audit import PURPOSE_LENGTH
from shared.auth import Caller, TokenVerifier
from shared.db import create_statement_pool
from shared.errors import PROBLEM_JSON, ProblemError

__all__ = ["HotLookups"]

log = logging.getLogger("registry.lookup.hot_path")

PREFIX = "/v1/persons/by-nik/"
_NIK = re.compile(NIK_PATTERN)
_SCOPE = "registry:read"
# What the tracing middleware labels its metrics with: the route's path template.
_ROUTE = SimpleNamespace(path=PREFIX + "{nik}")


class HotLookups:
    """Serves the common case of the by-NIK lookup; hands everything else to ``app``."""

    def __init__(
        self, app: ASGIApp, *, database_url: str, pool_size: int, wait_for_flush: bool = True
    ) -> None:
        self.app = app
        self._database_url = database_url
        self._pool_size = pool_size
        self._wait_for_flush = wait_for_flush  # settings.read_audit_commit
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_pool_on_shutdown(send))
            return
        lookup = self._well_formed(scope) if scope["type"] == "http" else None
        if lookup is None:
            await self.app(scope, receive, send)
            return
        nik, purpose, caller = lookup
        try:
            pool = await self._statement_pool()
            async with pool.acquire() as connection:
                person = await fetch_person(
                    connection, key="nik", value=nik, caller=caller, purpose=purpose
                )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Nothing was sent yet: the route runs it again and answers the problem properly.
            log.warning("hot_lookups.fell_back", extra={"error": repr(exc)})
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        if person is None:
            await _send(send, 404, PROBLEM_JSON, _problem(PersonNotFound(), scope["path"]))
        else:
            await _send(send, 200, "application/json", orjson.dumps(person))

    def _well_formed(self, scope: Scope) -> tuple[str, str, Caller] | None:
        """(NIK, purpose, caller) when the route would surely accept the request, else None."""
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if scope["method"] != "GET" or not path.startswith(PREFIX):
            return None
        nik = path[len(PREFIX) :]
        if not _NIK.fullmatch(nik):
            return None
        # Exactly one parameter, `purpose` (decoded as Starlette's query parsing decodes it).
        name, _, value = scope["query_string"].decode("latin-1").partition("=")
        if name != "purpose" or "&" in value:
            return None
        purpose = unquote_plus(value)
        if len(purpose) not in PURPOSE_LENGTH:
            return None
        caller = _caller(scope)
        if caller is None or not caller.has_scope(_SCOPE):
            return None
        return nik, purpose, caller

    async def _statement_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await create_statement_pool(
                        self._database_url,
                        size=self._pool_size,
                        application_name="simpul-registry-lookups",
                        wait_for_flush=self._wait_for_flush,
                    )
        return self._pool

    def _closing_pool_on_shutdown(self, send: Send) -> Send:
        async def closing(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and self._pool is not None:
                await self._pool.close()
                self._pool = None
            await send(message)

        return closing


def _caller(scope: Scope) -> Caller | None:
    verifier: TokenVerifier | None = getattr(scope["app"].state, "token_verifier", None)
    if verifier is None:
        return None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token:
                return None
            try:
                return verifier.verify(token)
            except ProblemError:
                return None
    return None


def _problem(error: ProblemError, instance: str) -> bytes:
    return orjson.dumps(error.to_problem(instance))


async def _send(send: Send, status: int, media_type: str, body: bytes) -> None:
    headers = [
        (b"content-type", media_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
