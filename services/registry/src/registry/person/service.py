"""People's use cases: register, update, record a death, move, read the versions.

(Reads of the current record are lookups, one audited statement each: :mod:`registry.lookup`.)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.changes import (
    check_joinable,
    check_village,
    emit_person,
    flush_or_problem,
    head_needs_household,
    household_to_join,
    locked_households,
    locked_person,
    person_facts,
)
from registry.errors import (
    InvalidChange,
    InvalidNik,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonDeceased,
    PersonNotFound,
)
from registry.events import (
    PERSON_DIED,
    PERSON_MOVED,
    PERSON_REGISTERED,
    PERSON_UPDATED,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonUpdated,
)
from registry.history import VersionRead, read_versions
from registry.models import Household, Person, PersonVersion, Region
from registry.nik import nik_problems, today_in_indonesia
from registry.person.schemas import PersonCreate, PersonDeath, PersonMove
from registry.projection import projection_for
from shared.auth import Caller

__all__ = [
    "move_person",
    "read_person_versions",
    "record_death",
    "register_person",
    "update_person",
]


async def register_person(
    session: AsyncSession, *, person_in: PersonCreate, caller: Caller
) -> Person:
    """A new person, possibly on a family card; emits ``registry.person.registered.v1``."""
    if not caller.may_see(person_in.village_code):
        raise OutsideRegion(f"village {person_in.village_code} is outside your regions")
    problems = nik_problems(person_in.nik, birth_date=person_in.birth_date, sex=person_in.sex)
    if problems:
        raise InvalidNik("; ".join(problems), field="nik")
    await check_village(session, person_in.village_code, caller, field="village_code")
    if await session.get(Region, person_in.nik[:6]) is None:
        raise InvalidNik(f"NIK district code {person_in.nik[:6]} does not exist", field="nik")
    head_needs_household(person_in.relationship, person_in.household_id)
    if person_in.household_id is not None:
        await household_to_join(
            session, person_in.household_id, caller, village_code=person_in.village_code
        )
    if await session.scalar(select(Person.id).where(Person.nik == person_in.nik)) is not None:
        raise NikAlreadyRegistered()
    person = Person(id=uuid.uuid4(), status="alive", **person_in.model_dump())
    session.add(person)
    await flush_or_problem(session, household_id=person_in.household_id)
    await session.refresh(person)
    await emit_person(session, PERSON_REGISTERED, PersonRegistered(**person_facts(person)))
    return person


async def update_person(
    session: AsyncSession, *, person_id: uuid.UUID, changes: Mapping[str, Any], caller: Caller
) -> Person:
    """Name, relationship and attributes; emits ``registry.person.updated.v1`` with ``changed``."""
    person = await locked_person(session, person_id, caller)
    changed = {k: v for k, v in changes.items() if getattr(person, k) != v}
    if not changed:
        return person
    if "relationship" in changed:
        head_needs_household(changed["relationship"], person.household_id)
    for name, value in changed.items():
        setattr(person, name, value)
    await flush_or_problem(session, household_id=person.household_id)
    await session.refresh(person)
    await emit_person(
        session, PERSON_UPDATED, PersonUpdated(**person_facts(person), changed=sorted(changed))
    )
    return person


async def record_death(
    session: AsyncSession, *, person_id: uuid.UUID, death: PersonDeath, caller: Caller
) -> Person:
    """Status ``deceased`` from ``death_date``; emits ``registry.person.died.v1``."""
    person = await locked_person(session, person_id, caller)
    if person.status == "deceased":
        raise PersonDeceased(f"the death was already recorded on {person.death_date}")
    if death.death_date < person.birth_date:
        raise InvalidChange(
            f"death date {death.death_date} is before the birth date {person.birth_date}",
            field="death_date",
        )
    if death.death_date > today_in_indonesia():
        raise InvalidChange(f"death date {death.death_date} is in the future", field="death_date")
    person.status = "deceased"
    person.death_date = death.death_date
    await flush_or_problem(session)
    await session.refresh(person)
    await emit_person(
        session,
        PERSON_DIED,
        PersonDied(**person_facts(person), death_date=death.death_date, source=death.source),
    )
    return person


async def move_person(
    session: AsyncSession, *, person_id: uuid.UUID, move: PersonMove, caller: Caller
) -> Person:
    """New village and/or family card; emits ``registry.person.moved.v1``.

    Without ``household_id`` the person leaves their card. The relationship is the one given,
    else kept when the card stays, else ``other``. A person whose status was ``moved`` (left
    the recorded address) is ``alive`` again once a new place is known. When only the
    relationship differs this is an update (``registry.person.updated.v1``), not a move.
    """
    # Households before people, in every use case: two changes never wait on each other.
    joined: dict[uuid.UUID, Household] = {}
    if move.household_id is not None:
        joined = await locked_households(session, [move.household_id], caller)
    person = await locked_person(session, person_id, caller)
    if person.status == "deceased":
        raise PersonDeceased(f"a deceased person cannot move (died {person.death_date})")
    await check_village(session, move.village_code, caller, field="village_code")
    if move.household_id is not None:
        check_joinable(joined.get(move.household_id), move.household_id, move.village_code)
    same_card = move.household_id == person.household_id
    relationship = move.relationship or (person.relationship if same_card else "other")
    head_needs_household(relationship, move.household_id)
    target = {
        "village_code": move.village_code,
        "household_id": move.household_id,
        "relationship": relationship,
        "status": "alive",
    }
    changed = {k: v for k, v in target.items() if getattr(person, k) != v}
    if not changed:
        return person
    before = (person.village_code, person.household_id)
    for name, value in changed.items():
        setattr(person, name, value)
    await flush_or_problem(session, household_id=move.household_id)
    await session.refresh(person)
    if changed.keys() <= {"relationship"}:
        data: BaseModel = PersonUpdated(**person_facts(person), changed=["relationship"])
        await emit_person(session, PERSON_UPDATED, data)
        return person
    data = PersonMoved(
        **person_facts(person), from_village_code=before[0], from_household_id=before[1]
    )
    await emit_person(session, PERSON_MOVED, data)
    return person


async def read_person_versions(
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
    return await read_versions(
        session,
        table=PersonVersion,
        owner=PersonVersion.person_id,
        record_id=person_id,
        resource_type="person",
        fields=projection_for(caller.scopes).person_fields,
        caller=caller,
        purpose=purpose,
        as_of=as_of,
    )
