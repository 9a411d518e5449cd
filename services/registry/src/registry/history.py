"""Version history as callers read it: every version of a record, or the one valid at an instant,
cut to what the caller's scopes reveal, and audited. (The database keeps the versions:
:mod:`registry.versioning`.)"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from registry.models import HouseholdVersion, PersonVersion, audit_log
from shared.audit import record_read
from shared.auth import Caller

__all__ = ["VersionRead", "read_versions"]

# Checked for each table on its own, so the rows keep their type.
HistoryTable = TypeVar("HistoryTable", PersonVersion, HouseholdVersion)


class VersionRead(BaseModel):
    version: int
    valid_from: datetime
    valid_to: datetime | None = Field(description="null: the current version")
    data: dict[str, Any] = Field(description="The record as it was, projected by your scopes")


def _project(data: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A stored version cut down to what the caller's scopes reveal (registry.projection)."""
    shown = {name: data[name] for name in fields if name in data}
    if "birth_year" in fields and data.get("birth_date"):
        shown["birth_year"] = int(str(data["birth_date"])[:4])
    return shown


async def read_versions(
    session: AsyncSession,
    *,
    table: type[HistoryTable],
    owner: InstrumentedAttribute[uuid.UUID],
    record_id: uuid.UUID,
    resource_type: str,
    fields: Sequence[str],
    caller: Caller,
    purpose: str,
    as_of: datetime | None,
) -> list[VersionRead]:
    """The versions of the record ``record_id`` (``owner`` is the history's column naming it),
    in order, or the one valid at ``as_of``; audited as ``read_history``. The caller has been
    checked to see the record."""
    statement = select(table).where(owner == record_id)
    if as_of is not None:
        statement = statement.where(
            table.valid_from <= as_of, or_(table.valid_to.is_(None), table.valid_to > as_of)
        )
    rows = (await session.scalars(statement.order_by(table.version))).all()
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        action="read_history",
        resource_type=resource_type,
        resource_ids=[str(record_id)],
    )
    return [
        VersionRead(
            version=row.version,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            data=_project(row.data, fields),
        )
        for row in rows
    ]
