"""What every change to people and households is built from: locks, checks and events.

Every use case (:mod:`registry.person.service`, :mod:`registry.household.service`) locks the
rows it changes (``FOR UPDATE``, several rows in id order so two changes never deadlock), works
out what really differs, writes only that, and stages one event per changed aggregate through
the outbox (the catalogue and the choice of events for split and merge are in
:mod:`registry.events`). Nothing differs -> nothing is written, so the row version (bumped by
the database trigger of :mod:`registry.versioning` only when a column changes) stays, and no
event is staged.

Region rules: a record outside the caller's regions reads as "does not exist" (404, or 422 for
an id given in the body); a new place (village) outside them is refused with 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import (
    HouseholdAlreadyHasHead,
    HouseholdDissolved,
    HouseholdNotFound,
    InvalidChange,
    KkAlreadyRegistered,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonNotFound,
    UnknownHousehold,
    UnknownRegion,
)
from registry.events import (
    HOUSEHOLD_TOPIC,
    PERSON_MOVED,
    PERSON_TOPIC,
    SOURCE,
    PersonMoved,
)
from registry.models import Household, Person, Region
from shared.auth import Caller
from shared.outbox import add_event

__all__ = [
    "HEAD_CONSTRAINT",
    "HOUSING_FIELDS",
    "check_joinable",
    "check_village",
    "emit_household",
    "emit_moves",
    "emit_person",
    "flush_or_problem",
    "head_needs_household",
    "household_facts",
    "household_for_change",
    "household_members",
    "household_to_join",
    "locked_households",
    "locked_members",
    "locked_person",
    "person_facts",
]

HEAD_CONSTRAINT = "uq_person_household_head"
HOUSING_FIELDS = ("floor", "wall", "roof", "water", "sanitation", "electricity", "house_fit")


def person_facts(person: Person) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "household_id": person.household_id,
        "village_code": person.village_code,
        "birth_date": person.birth_date,
        "sex": person.sex,
        "status": person.status,
        "relationship": person.relationship,
        "disability": person.disability,
        "version": person.version,
    }


def household_facts(household: Household) -> dict[str, Any]:
    return {
        "household_id": household.id,
        "village_code": household.village_code,
        "decile": household.decile,
        "status": household.status,
        "version": household.version,
        **{name: getattr(household, name) for name in HOUSING_FIELDS},
    }


async def emit_person(session: AsyncSession, type_: str, data: BaseModel) -> None:
    key = str(data.person_id)  # type: ignore[attr-defined]
    await add_event(session, source=SOURCE, topic=PERSON_TOPIC, key=key, type=type_, data=data)


async def emit_household(session: AsyncSession, type_: str, data: BaseModel) -> None:
    key = str(data.household_id)  # type: ignore[attr-defined]
    await add_event(session, source=SOURCE, topic=HOUSEHOLD_TOPIC, key=key, type=type_, data=data)


async def emit_moves(
    session: AsyncSession,
    people: Iterable[Person],
    moved_from: Mapping[uuid.UUID, tuple[str, uuid.UUID | None]],
) -> None:
    """``registry.person.moved.v1`` for each of ``people``, from the (village, household) that
    ``moved_from`` gives; each person is read again first, for the version the trigger bumped."""
    for person in people:
        await session.refresh(person)
        from_village, from_household = moved_from[person.id]
        moved = PersonMoved(
            **person_facts(person),
            from_village_code=from_village,
            from_household_id=from_household,
        )
        await emit_person(session, PERSON_MOVED, moved)


def _constraint_of(exc: IntegrityError) -> str | None:
    cause: BaseException | None = exc.orig
    while cause is not None:
        if name := getattr(cause, "constraint_name", None):
            return str(name)
        cause = cause.__cause__
    return None


async def flush_or_problem(session: AsyncSession, *, household_id: uuid.UUID | None = None) -> None:
    """Flush, turning the constraints a client can run into into their problems."""
    try:
        await session.flush()
    except IntegrityError as exc:
        constraint = _constraint_of(exc)
        if constraint == HEAD_CONSTRAINT:
            where = f"household {household_id}" if household_id else "the household"
            raise HouseholdAlreadyHasHead(
                f"{where} already has a living head: one living head per KK "
                f"(constraint {HEAD_CONSTRAINT}); change the present head's relationship first",
                constraint=HEAD_CONSTRAINT,
            ) from exc
        if constraint == "uq_person_nik":  # a concurrent registration won the race
            raise NikAlreadyRegistered() from exc
        if constraint == "uq_household_kk":
            raise KkAlreadyRegistered() from exc
        raise


async def check_village(session: AsyncSession, code: str, caller: Caller, *, field: str) -> None:
    """A real village inside the caller's regions (403 outside, 422 when not a village)."""
    if not caller.may_see(code):
        raise OutsideRegion(f"village {code} is outside your regions", field=field)
    village = await session.get(Region, code)
    if village is None or village.level != 4:
        raise UnknownRegion(f"village code {code} does not exist", field=field)


async def locked_person(session: AsyncSession, person_id: uuid.UUID, caller: Caller) -> Person:
    person = await session.get(Person, person_id, with_for_update=True)
    if person is None or not caller.may_see(person.village_code):
        raise PersonNotFound()
    return person


async def locked_households(
    session: AsyncSession, ids: Iterable[uuid.UUID], caller: Caller
) -> dict[uuid.UUID, Household]:
    """The visible ones among ``ids``, locked in id order."""
    rows = await session.scalars(
        select(Household)
        .where(Household.id.in_(list(ids)))
        .order_by(Household.id)
        .with_for_update()
    )
    return {h.id: h for h in rows if caller.may_see(h.village_code)}


async def household_for_change(
    session: AsyncSession, household_id: uuid.UUID, caller: Caller
) -> Household:
    household = (await locked_households(session, [household_id], caller)).get(household_id)
    if household is None:
        raise HouseholdNotFound()
    if household.status == "dissolved":
        raise HouseholdDissolved(f"household {household_id} was merged into another one")
    return household


async def household_to_join(
    session: AsyncSession, household_id: uuid.UUID, caller: Caller, *, village_code: str
) -> Household:
    """A household named in a body: visible (else "no such household"), active, in the village."""
    household = (await locked_households(session, [household_id], caller)).get(household_id)
    return check_joinable(household, household_id, village_code)


def check_joinable(
    household: Household | None, household_id: uuid.UUID, village_code: str
) -> Household:
    if household is None:
        raise UnknownHousehold(f"no household {household_id}", field="household_id")
    if household.status == "dissolved":
        raise HouseholdDissolved(f"household {household_id} was merged into another one")
    if household.village_code != village_code:
        raise InvalidChange(
            f"household {household_id} lives in village {household.village_code}, "
            f"not {village_code}",
            field="village_code",
        )
    return household


def head_needs_household(relationship: str, household_id: uuid.UUID | None) -> None:
    if relationship == "head" and household_id is None:
        raise InvalidChange("only a member of a household can be its head", field="relationship")


async def locked_members(
    session: AsyncSession, household_id: uuid.UUID, ids: Iterable[uuid.UUID] | None = None
) -> list[Person]:
    """Living members of a household (all, or those among ``ids``), locked in id order."""
    statement = select(Person).where(Person.household_id == household_id, Person.status == "alive")
    if ids is not None:
        statement = statement.where(Person.id.in_(list(ids)))
    return list(await session.scalars(statement.order_by(Person.id).with_for_update()))


async def household_members(session: AsyncSession, household_id: uuid.UUID) -> list[Person]:
    """Everyone on the card: the living first (head first), then the deceased and moved."""
    rows = await session.scalars(
        select(Person)
        .where(Person.household_id == household_id)
        .order_by((Person.status != "alive"), (Person.relationship != "head"), Person.birth_date)
    )
    return list(rows)
