"""Who may call what (the scope aliases every registry route uses), and the audited reads'
unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import AwareDatetime
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.settings import RegistrySettings
from shared.auth import Caller, require_scope
from shared.service import SessionDep, typed_settings

Reader = Annotated[Caller, Depends(require_scope("registry:read"))]
Writer = Annotated[Caller, Depends(require_scope("registry:write"))]
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
