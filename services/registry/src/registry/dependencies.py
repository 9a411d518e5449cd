"""What the registry's routes share: who may call what (the scope aliases), the audited reads'
unit of work, the ``as_of`` parameter, and the orjson answer of the lookups."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.settings import RegistrySettings
from shared.auth import Caller, require_scope
from shared.service import SessionDep, typed_settings

Reader = Annotated[Caller, Depends(require_scope("registry:read"))]
Writer = Annotated[Caller, Depends(require_scope("registry:write"))]
Statistician = Annotated[Caller, Depends(require_scope("registry:stats"))]
Admin = Annotated[Caller, Depends(require_scope("registry:admin"))]
AsOf = Annotated[
    AwareDatetime | None,
    Query(
        description="Only the version valid at this instant (RFC 3339 with a UTC offset); "
        "leave out for every version.",
        examples=["2026-01-31T23:59:59+07:00"],
    ),
]


_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit = off")
registry_settings = typed_settings(RegistrySettings)


async def _audited_read_session(request: Request, session: SessionDep) -> AsyncSession:
    """The request's session, for routes that read personal data and write only its audit
    rows: with ``read_audit_commit = async`` their commit does not wait for the disk (see the
    setting), as on the by-NIK hot path. Routes that change anything never use this."""
    settings = registry_settings(request)
    if not settings.read_audits_wait_for_flush:
        await session.execute(_NO_FLUSH_WAIT)
    return session


AuditedReadSession = Annotated[AsyncSession, Depends(_audited_read_session)]


def json_response(content: Any) -> Response:
    """An answer the lookups already shaped as documented, serialised once with orjson (the
    route's ``response_model`` documents it, nothing validates it twice)."""
    return Response(orjson.dumps(content), media_type="application/json")
