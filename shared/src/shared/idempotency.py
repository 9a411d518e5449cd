"""``Idempotency-Key`` for creating POSTs (IETF draft-ietf-httpapi-idempotency-key-header).

The key row is claimed in the same transaction as the domain write and its outbox row, so a
request either happened once, with its stored response, or not at all:

* same agency + key + same body, completed  -> the stored response is replayed;
* same key, different body                    -> 422;
* same key while the first request still runs -> 409 (an advisory lock is held by the first);
* keys are scoped by agency, so one agency can neither replay nor probe another's keys.

Usage in a route::

    if (replay := await idempotency.begin(session, caller, body)) is not None:
        return replay
    ...
    return await idempotency.finish(session, PersonRead.model_validate(person), status_code=201)
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any

import orjson
from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, WithJsonSchema
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import Caller
from shared.errors import BadRequest, Conflict, UnprocessableContent

__all__ = [
    "IDEMPOTENCY_TABLE",
    "Idempotency",
    "IdempotencyDep",
    "IdempotencyKeyConflict",
    "IdempotencyKeyInFlight",
    "idempotency_table",
    "reap_expired_keys",
]

IDEMPOTENCY_TABLE = "idempotency_key"
_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,255}$"
_KEY_FORMAT = re.compile(_KEY_PATTERN)
# What the OpenAPI document says of the header. Only documented: the dependency checks the key
# itself, so a bad one is a 400 problem naming the rule rather than a generic 422.
_KEY_SCHEMA = {"type": "string", "minLength": 8, "maxLength": 255, "pattern": _KEY_PATTERN}


class IdempotencyKeyInFlight(Conflict):
    type = "idempotency-key-in-flight"
    title = "A request with this Idempotency-Key is still being processed"


class IdempotencyKeyConflict(UnprocessableContent):
    type = "idempotency-key-reused"
    title = "This Idempotency-Key was used with a different request body"


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        IDEMPOTENCY_TABLE,
        metadata,
        Column("agency", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("method_path", Text, nullable=False),
        Column("request_sha256", Text, nullable=False),
        Column("response_status", Integer),
        Column("response_body", JSONB),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("agency", "key"),
    )


class Idempotency:
    """The request's Idempotency-Key, if it sent one."""

    def __init__(self, key: str | None, method_path: str) -> None:
        self.key = key
        self.method_path = method_path

    async def begin(
        self, session: AsyncSession, caller: Caller, body: BaseModel
    ) -> JSONResponse | None:
        """Claim the key; return the stored response when this is a replay."""
        if self.key is None:
            return None
        fingerprint = hashlib.sha256(
            self.method_path.encode()
            + b"\n"
            + orjson.dumps(body.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        locked = await session.scalar(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock, 0))"),
            {"lock": f"{IDEMPOTENCY_TABLE}:{caller.agency}:{self.key}"},
        )
        if not locked:
            exc = IdempotencyKeyInFlight("retry after the first request has finished")
            exc.headers["Retry-After"] = "1"
            raise exc
        row = (
            await session.execute(
                text(
                    f"SELECT method_path, request_sha256, response_status, response_body "
                    f"FROM {IDEMPOTENCY_TABLE} WHERE agency = :agency AND key = :key"
                ),
                {"agency": caller.agency, "key": self.key},
            )
        ).one_or_none()
        if row is not None:
            if row.request_sha256 != fingerprint or row.method_path != self.method_path:
                raise IdempotencyKeyConflict("send a new Idempotency-Key for a different request")
            return JSONResponse(
                row.response_body,
                status_code=row.response_status,
                headers={"Idempotent-Replayed": "true"},
            )
        await session.execute(
            text(
                f"INSERT INTO {IDEMPOTENCY_TABLE} (agency, key, method_path, request_sha256) "
                "VALUES (:agency, :key, :method_path, :sha)"
            ),
            {
                "agency": caller.agency,
                "key": self.key,
                "method_path": self.method_path,
                "sha": fingerprint,
            },
        )
        self._agency = caller.agency
        return None

    async def finish(
        self, session: AsyncSession, response: BaseModel, *, status_code: int
    ) -> JSONResponse:
        """Store the response with the key (same transaction) and return it."""
        content: Any = response.model_dump(mode="json")
        if self.key is not None:
            await session.execute(
                text(
                    f"UPDATE {IDEMPOTENCY_TABLE} SET response_status = :status, "
                    "response_body = CAST(:body AS jsonb) WHERE agency = :agency AND key = :key"
                ),
                {
                    "status": status_code,
                    "body": orjson.dumps(content).decode(),
                    "agency": self._agency,
                    "key": self.key,
                },
            )
        return JSONResponse(content, status_code=status_code)


def _idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        WithJsonSchema(_KEY_SCHEMA),
        Header(
            description=(
                "Makes a retried POST safe: the same key with the same body returns the first "
                "response; with another body it is refused (422); while the first is running, 409. "
                "Keys are kept 24 hours and scoped to your agency. 8 to 255 letters, digits, "
                "'.', '_', ':' or '-' (else 400)."
            ),
            examples=["3f1c9a52-6f0e-4c55-9b1d-2f7e0c6a9d10"],
        ),
    ] = None,
) -> Idempotency:
    if idempotency_key is not None and not _KEY_FORMAT.match(idempotency_key):
        raise BadRequest(
            "Idempotency-Key must be 8-255 characters of letters, digits, '.', '_', ':' or '-'"
        )
    return Idempotency(idempotency_key, f"{request.method} {request.url.path}")


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def reap_expired_keys(session: AsyncSession, *, older_than_hours: int) -> int:
    """Delete keys past their published lifetime (in batches; run by the service's worker)."""
    result = await session.execute(
        text(
            f"DELETE FROM {IDEMPOTENCY_TABLE} WHERE ctid IN (SELECT ctid FROM {IDEMPOTENCY_TABLE} "
            "WHERE created_at < now() - make_interval(hours => :hours) LIMIT 5000)"
        ),
        {"hours": older_than_hours},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
