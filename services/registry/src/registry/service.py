"""Registry use cases: they take the session, write rows and outbox events, never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import HouseholdNotFound, PersonNotFound, RegionNotFound
from registry.models import (
    CorrectionRequest,
    Household,
    HouseholdVersion,
    Person,
    PersonVersion,
    Region,
    audit_log,
)
from registry.projection import projection_for
from registry.schemas import VersionRead
from shared.audit import record_read
from shared.auth import Caller

__all__ = [
    "get_region",
    "household_history",
    "open_correction_request",
    "person_history",
]


async def get_region(session: AsyncSession, *, code: str) -> Region:
    region = await session.get(Region, code)
    if region is None:
        raise RegionNotFound(f"no region has the code {code}")
    return region


async def open_correction_request(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    person_id: uuid.UUID | None,
    region_code: str,
    summary: str,
) -> None:
    known = person_id is not None and await session.get(Person, person_id) is not None
    session.add(
        CorrectionRequest(
            complaint_id=complaint_id,
            person_id=person_id if known else None,
            region_code=region_code,
            summary=summary,
        )
    )


def _project(data: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """A stored version cut down to what the caller's scopes reveal (registry.projection)."""
    shown = {name: data[name] for name in fields if name in data}
    if "birth_year" in fields and data.get("birth_date"):
        shown["birth_year"] = int(str(data["birth_date"])[:4])
    return shown


def _versions(
    rows: Sequence[PersonVersion | HouseholdVersion], fields: Sequence[str]
) -> list[VersionRead]:
    return [
        VersionRead(
            version=row.version,
            valid_from=row.valid_from,
            valid_to=row.valid_to,
            data=_project(row.data, fields),
        )
        for row in rows
    ]


async def person_history(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    caller: Caller,
    purpose: str,
    as_of: datetime | None = None,
) -> list[VersionRead]:
    """Every version of a person, or the one valid at ``as_of`` (audited, projected by scope)."""
    person = await session.get(Person, person_id)
    if person is None or not caller.may_see(person.village_code):
        raise PersonNotFound()
    statement = select(PersonVersion).where(PersonVersion.person_id == person_id)
    if as_of is not None:
        statement = statement.where(
            PersonVersion.valid_from <= as_of,
            or_(PersonVersion.valid_to.is_(None), PersonVersion.valid_to > as_of),
        )
    rows = (await session.scalars(statement.order_by(PersonVersion.version))).all()
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        action="read_history",
        resource_type="person",
        resource_ids=[str(person_id)],
    )
    return _versions(rows, projection_for(caller.scopes).person_fields)


async def household_history(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    caller: Caller,
    purpose: str,
    as_of: datetime | None = None,
) -> list[VersionRead]:
    """Every version of a family card, or the one valid at ``as_of`` (audited, projected)."""
    household = await session.get(Household, household_id)
    if household is None or not caller.may_see(household.village_code):
        raise HouseholdNotFound()
    statement = select(HouseholdVersion).where(HouseholdVersion.household_id == household_id)
    if as_of is not None:
        statement = statement.where(
            HouseholdVersion.valid_from <= as_of,
            or_(HouseholdVersion.valid_to.is_(None), HouseholdVersion.valid_to > as_of),
        )
    rows = (await session.scalars(statement.order_by(HouseholdVersion.version))).all()
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        action="read_history",
        resource_type="household",
        resource_ids=[str(household_id)],
    )
    return _versions(rows, projection_for(caller.scopes).household_fields)
