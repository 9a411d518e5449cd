"""Registry use cases: they take the session, write rows and outbox events, never commit."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import (
    InvalidNik,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonNotFound,
    RegionNotFound,
    UnknownRegion,
)
from registry.events import PERSON_REGISTERED, PERSON_TOPIC, SOURCE, PersonRegistered
from registry.models import CorrectionRequest, Person, Region, audit_log
from registry.nik import nik_problems
from registry.schemas import PersonCreate
from shared.audit import record_read
from shared.auth import Caller
from shared.outbox import add_event

__all__ = ["create_person", "get_person", "get_region", "open_correction_request"]


async def create_person(
    session: AsyncSession, *, person_in: PersonCreate, caller: Caller
) -> Person:
    if not caller.may_see(person_in.village_code):
        raise OutsideRegion(f"village {person_in.village_code} is outside your regions")
    problems = nik_problems(person_in.nik, birth_date=person_in.birth_date, sex=person_in.sex)
    if problems:
        raise InvalidNik("; ".join(problems), field="nik")
    village = await session.get(Region, person_in.village_code)
    if village is None or village.level != 4:
        raise UnknownRegion(
            f"village code {person_in.village_code} does not exist", field="village_code"
        )
    if await session.get(Region, person_in.nik[:6]) is None:
        raise InvalidNik(f"NIK district code {person_in.nik[:6]} does not exist", field="nik")
    if await session.scalar(select(Person.id).where(Person.nik == person_in.nik)) is not None:
        raise NikAlreadyRegistered()
    person = Person(id=uuid.uuid4(), status="alive", **person_in.model_dump())
    session.add(person)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same NIK won the race
        raise NikAlreadyRegistered() from exc
    await session.refresh(person)
    await add_event(
        session,
        source=SOURCE,
        topic=PERSON_TOPIC,
        key=str(person.id),
        type=PERSON_REGISTERED,
        data=PersonRegistered(
            person_id=person.id,
            household_id=person.household_id,
            village_code=person.village_code,
            birth_date=person.birth_date,
            sex=person.sex,  # type: ignore[arg-type]
            status=person.status,  # type: ignore[arg-type]
            disability=person.disability,
            version=person.version,
        ),
    )
    return person


async def get_person(
    session: AsyncSession, *, person_id: uuid.UUID, caller: Caller, purpose: str
) -> Person:
    person = await session.get(Person, person_id)
    # Outside the caller's region reads exactly like "does not exist" (no existence oracle).
    if person is None or not caller.may_see(person.village_code):
        raise PersonNotFound()
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        resource_type="person",
        resource_ids=[str(person.id)],
    )
    return person


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
