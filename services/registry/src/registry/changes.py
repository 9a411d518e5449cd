"""Changes to people and households: each one versioned and announced in its own transaction.

Every use case here locks the rows it changes (``FOR UPDATE``, several rows in id order so two
changes never deadlock), works out what really differs, writes only that, and stages one event
per changed aggregate through the outbox (the catalogue and the choice of events for split and
merge are in :mod:`registry.events`). Nothing differs -> nothing is written, so the row version
(bumped by the database trigger of :mod:`registry.versioning` only when a column changes) stays,
and no event is staged.

Region rules: a record outside the caller's regions reads as "does not exist" (404, or 422 for
an id given in the body); a new place (village) outside them is refused with 403.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
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
    InvalidKk,
    InvalidNik,
    KkAlreadyRegistered,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonDeceased,
    PersonNotFound,
    UnknownHousehold,
    UnknownRegion,
)
from registry.events import (
    HOUSEHOLD_DECILE_CHANGED,
    HOUSEHOLD_MERGED,
    HOUSEHOLD_REGISTERED,
    HOUSEHOLD_SPLIT,
    HOUSEHOLD_TOPIC,
    HOUSEHOLD_UPDATED,
    PERSON_DIED,
    PERSON_MOVED,
    PERSON_REGISTERED,
    PERSON_TOPIC,
    PERSON_UPDATED,
    SOURCE,
    HouseholdDecileChanged,
    HouseholdMerged,
    HouseholdRegistered,
    HouseholdSplit,
    HouseholdUpdated,
    PersonDied,
    PersonMoved,
    PersonRegistered,
    PersonUpdated,
)
from registry.models import Household, Person, Region
from registry.nik import kk_problems, nik_problems
from registry.schemas import (
    HouseholdCreate,
    HouseholdMergeRequest,
    HouseholdMoveRequest,
    HouseholdSplitRequest,
    PersonCreate,
    PersonDeath,
    PersonMove,
)
from shared.auth import Caller
from shared.outbox import add_event

__all__ = [
    "HEAD_CONSTRAINT",
    "household_members",
    "merge_households",
    "move_person",
    "record_death",
    "register_household",
    "register_person",
    "split_household",
    "update_household",
    "update_person",
]

HEAD_CONSTRAINT = "uq_person_household_head"
HOUSING_FIELDS = ("floor", "wall", "roof", "water", "sanitation", "electricity", "house_fit")
# The easternmost Indonesian time zone (WIT): a death "today" in Papua is not in the future.
_WIT = timezone(timedelta(hours=9))


# --- events ---------------------------------------------------------------------------------


def _person_facts(person: Person) -> dict[str, Any]:
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


def _household_facts(household: Household) -> dict[str, Any]:
    return {
        "household_id": household.id,
        "village_code": household.village_code,
        "decile": household.decile,
        "status": household.status,
        "version": household.version,
        **{name: getattr(household, name) for name in HOUSING_FIELDS},
    }


async def _emit_person(session: AsyncSession, type_: str, data: BaseModel) -> None:
    key = str(data.person_id)  # type: ignore[attr-defined]
    await add_event(session, source=SOURCE, topic=PERSON_TOPIC, key=key, type=type_, data=data)


async def _emit_household(session: AsyncSession, type_: str, data: BaseModel) -> None:
    key = str(data.household_id)  # type: ignore[attr-defined]
    await add_event(session, source=SOURCE, topic=HOUSEHOLD_TOPIC, key=key, type=type_, data=data)


# --- shared checks --------------------------------------------------------------------------


def _constraint_of(exc: IntegrityError) -> str | None:
    cause: BaseException | None = exc.orig
    while cause is not None:
        if name := getattr(cause, "constraint_name", None):
            return str(name)
        cause = cause.__cause__
    return None


async def _flush(session: AsyncSession, *, household_id: uuid.UUID | None = None) -> None:
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


async def _village(session: AsyncSession, code: str, caller: Caller, *, field: str) -> None:
    """A real village inside the caller's regions (403 outside, 422 when not a village)."""
    if not caller.may_see(code):
        raise OutsideRegion(f"village {code} is outside your regions", field=field)
    village = await session.get(Region, code)
    if village is None or village.level != 4:
        raise UnknownRegion(f"village code {code} does not exist", field=field)


async def _locked_person(session: AsyncSession, person_id: uuid.UUID, caller: Caller) -> Person:
    person = await session.get(Person, person_id, with_for_update=True)
    if person is None or not caller.may_see(person.village_code):
        raise PersonNotFound()
    return person


async def _locked_households(
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


async def _household_for_change(
    session: AsyncSession, household_id: uuid.UUID, caller: Caller
) -> Household:
    household = (await _locked_households(session, [household_id], caller)).get(household_id)
    if household is None:
        raise HouseholdNotFound()
    if household.status == "dissolved":
        raise HouseholdDissolved(f"household {household_id} was merged into another one")
    return household


async def _household_to_join(
    session: AsyncSession, household_id: uuid.UUID, caller: Caller, *, village_code: str
) -> Household:
    """A household named in a body: visible (else "no such household"), active, in the village."""
    household = (await _locked_households(session, [household_id], caller)).get(household_id)
    return _check_joinable(household, household_id, village_code)


def _check_joinable(
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


def _head_needs_household(relationship: str, household_id: uuid.UUID | None) -> None:
    if relationship == "head" and household_id is None:
        raise InvalidChange("only a member of a household can be its head", field="relationship")


async def _locked_members(
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


# --- people ---------------------------------------------------------------------------------


async def register_person(
    session: AsyncSession, *, person_in: PersonCreate, caller: Caller
) -> Person:
    """A new person, possibly on a family card; emits ``registry.person.registered.v1``."""
    if not caller.may_see(person_in.village_code):
        raise OutsideRegion(f"village {person_in.village_code} is outside your regions")
    problems = nik_problems(person_in.nik, birth_date=person_in.birth_date, sex=person_in.sex)
    if problems:
        raise InvalidNik("; ".join(problems), field="nik")
    await _village(session, person_in.village_code, caller, field="village_code")
    if await session.get(Region, person_in.nik[:6]) is None:
        raise InvalidNik(f"NIK district code {person_in.nik[:6]} does not exist", field="nik")
    _head_needs_household(person_in.relationship, person_in.household_id)
    if person_in.household_id is not None:
        await _household_to_join(
            session, person_in.household_id, caller, village_code=person_in.village_code
        )
    if await session.scalar(select(Person.id).where(Person.nik == person_in.nik)) is not None:
        raise NikAlreadyRegistered()
    person = Person(id=uuid.uuid4(), status="alive", **person_in.model_dump())
    session.add(person)
    await _flush(session, household_id=person_in.household_id)
    await session.refresh(person)
    await _emit_person(session, PERSON_REGISTERED, PersonRegistered(**_person_facts(person)))
    return person


async def update_person(
    session: AsyncSession, *, person_id: uuid.UUID, changes: Mapping[str, Any], caller: Caller
) -> Person:
    """Name, relationship and attributes; emits ``registry.person.updated.v1`` with ``changed``."""
    person = await _locked_person(session, person_id, caller)
    changed = {k: v for k, v in changes.items() if getattr(person, k) != v}
    if not changed:
        return person
    if "relationship" in changed:
        _head_needs_household(changed["relationship"], person.household_id)
    for name, value in changed.items():
        setattr(person, name, value)
    await _flush(session, household_id=person.household_id)
    await session.refresh(person)
    await _emit_person(
        session, PERSON_UPDATED, PersonUpdated(**_person_facts(person), changed=sorted(changed))
    )
    return person


async def record_death(
    session: AsyncSession, *, person_id: uuid.UUID, death: PersonDeath, caller: Caller
) -> Person:
    """Status ``deceased`` from ``death_date``; emits ``registry.person.died.v1``."""
    person = await _locked_person(session, person_id, caller)
    if person.status == "deceased":
        raise PersonDeceased(f"the death was already recorded on {person.death_date}")
    if death.death_date < person.birth_date:
        raise InvalidChange(
            f"death date {death.death_date} is before the birth date {person.birth_date}",
            field="death_date",
        )
    if death.death_date > datetime.now(_WIT).date():
        raise InvalidChange(f"death date {death.death_date} is in the future", field="death_date")
    person.status = "deceased"
    person.death_date = death.death_date
    await _flush(session)
    await session.refresh(person)
    await _emit_person(
        session,
        PERSON_DIED,
        PersonDied(**_person_facts(person), death_date=death.death_date, source=death.source),
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
        joined = await _locked_households(session, [move.household_id], caller)
    person = await _locked_person(session, person_id, caller)
    if person.status == "deceased":
        raise PersonDeceased(f"a deceased person cannot move (died {person.death_date})")
    await _village(session, move.village_code, caller, field="village_code")
    if move.household_id is not None:
        _check_joinable(joined.get(move.household_id), move.household_id, move.village_code)
    same_card = move.household_id == person.household_id
    relationship = move.relationship or (person.relationship if same_card else "other")
    _head_needs_household(relationship, move.household_id)
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
    await _flush(session, household_id=move.household_id)
    await session.refresh(person)
    if changed.keys() <= {"relationship"}:
        data: BaseModel = PersonUpdated(**_person_facts(person), changed=["relationship"])
        await _emit_person(session, PERSON_UPDATED, data)
        return person
    data = PersonMoved(
        **_person_facts(person), from_village_code=before[0], from_household_id=before[1]
    )
    await _emit_person(session, PERSON_MOVED, data)
    return person


# --- households -----------------------------------------------------------------------------


async def _check_new_kk(session: AsyncSession, kk: str) -> None:
    problems = kk_problems(kk)
    if problems:
        raise InvalidKk("; ".join(problems), field="kk")
    district = await session.get(Region, kk[:6])
    if district is None or district.level != 3:
        raise InvalidKk(f"KK district code {kk[:6]} does not exist", field="kk")
    if await session.scalar(select(Household.id).where(Household.kk == kk)) is not None:
        raise KkAlreadyRegistered()


async def register_household(
    session: AsyncSession, *, household_in: HouseholdCreate, caller: Caller
) -> Household:
    """A new family card; emits ``registry.household.registered.v1``."""
    await _village(session, household_in.village_code, caller, field="village_code")
    await _check_new_kk(session, household_in.kk)
    household = Household(id=uuid.uuid4(), status="active", **household_in.model_dump())
    session.add(household)
    await _flush(session)
    await session.refresh(household)
    await _emit_household(
        session, HOUSEHOLD_REGISTERED, HouseholdRegistered(**_household_facts(household))
    )
    return household


async def update_household(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    changes: Mapping[str, Any],
    caller: Caller,
) -> Household:
    """Address and housing conditions (``updated``) and/or the decile (``decile_changed``).

    Both in one request are one new row version and two events carrying it.
    """
    household = await _household_for_change(session, household_id, caller)
    changed = {k: v for k, v in changes.items() if getattr(household, k) != v}
    if not changed:
        return household
    previous_decile = household.decile
    for name, value in changed.items():
        setattr(household, name, value)
    await _flush(session)
    await session.refresh(household)
    facts = _household_facts(household)
    if attributes := sorted(changed.keys() - {"decile"}):
        await _emit_household(
            session, HOUSEHOLD_UPDATED, HouseholdUpdated(**facts, changed=attributes)
        )
    if "decile" in changed:
        await _emit_household(
            session,
            HOUSEHOLD_DECILE_CHANGED,
            HouseholdDecileChanged(**facts, previous_decile=previous_decile),
        )
    return household


async def move_household(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    move: HouseholdMoveRequest,
    caller: Caller,
) -> Household:
    """The family moves together: the card's village and address (and its KK number when
    Dukcapil issued a new one), and the village of every living member.

    Emits ``registry.person.moved.v1`` for each living member whose village changes, then
    ``registry.household.updated.v1`` (``changed`` names what changed) on the card. Members who
    had left the address or died keep the village recorded for them. Nothing changed: nothing
    emitted, same version.
    """
    household = await _household_for_change(session, household_id, caller)
    await _village(session, move.village_code, caller, field="village_code")
    target = {"village_code": move.village_code, "address": move.address}
    if move.kk is not None and move.kk != household.kk:
        await _check_new_kk(session, move.kk)
        target["kk"] = move.kk
    changed = {k: v for k, v in target.items() if getattr(household, k) != v}
    if not changed:
        return household
    moving = [
        member
        for member in await _locked_members(session, household.id)
        if member.village_code != move.village_code
    ]
    came_from = {member.id: member.village_code for member in moving}
    for name, value in changed.items():
        setattr(household, name, value)
    for member in moving:
        member.village_code = move.village_code
    await _flush(session, household_id=household.id)
    for member in moving:
        await session.refresh(member)
        moved = PersonMoved(
            **_person_facts(member),
            from_village_code=came_from[member.id],
            from_household_id=household.id,
        )
        await _emit_person(session, PERSON_MOVED, moved)
    await session.refresh(household)
    await _emit_household(
        session,
        HOUSEHOLD_UPDATED,
        HouseholdUpdated(**_household_facts(household), changed=sorted(changed)),
    )
    return household


def _check_relationships(
    relationships: Mapping[uuid.UUID, str], members: Iterable[uuid.UUID]
) -> None:
    strangers = sorted(str(pid) for pid in relationships.keys() - set(members))
    if strangers:
        raise InvalidChange(
            f"relationships name people who do not change card: {', '.join(strangers)}",
            field="relationships",
        )


async def split_household(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    split: HouseholdSplitRequest,
    caller: Caller,
) -> tuple[Household, Household]:
    """Members leave for a new card (returns old, new); see :mod:`registry.events` for events.

    The new card takes the old one's address and housing conditions unless told otherwise; it
    has no decile until BPS ranks it. The old card's head cannot leave in a split.
    """
    source = await _household_for_change(session, household_id, caller)
    if len(set(split.person_ids)) != len(split.person_ids):
        raise InvalidChange("person_ids names someone twice", field="person_ids")
    if split.head_id not in split.person_ids:
        raise InvalidChange("the new head must be one of person_ids", field="head_id")
    _check_relationships(split.relationships, split.person_ids)
    if split.relationships.get(split.head_id, "head") != "head":
        raise InvalidChange("the new head's relationship is head", field="relationships")
    village_code = split.village_code or source.village_code
    await _village(session, village_code, caller, field="village_code")
    await _check_new_kk(session, split.kk)
    leaving = await _locked_members(session, source.id, split.person_ids)
    strangers = sorted(set(map(str, split.person_ids)) - {str(p.id) for p in leaving})
    if strangers:
        raise InvalidChange(
            f"not living members of household {source.id}: {', '.join(strangers)}",
            field="person_ids",
        )
    if any(p.relationship == "head" for p in leaving):
        raise InvalidChange(
            "the head of the household cannot leave it in a split; make someone else head first",
            field="person_ids",
        )
    new = Household(
        id=uuid.uuid4(),
        kk=split.kk,
        village_code=village_code,
        address=source.address if split.address is None else split.address,
        decile=None,
        status="active",
        **{name: getattr(source, name) for name in HOUSING_FIELDS},
    )
    session.add(new)
    await _flush(session)
    await session.refresh(new)
    moved_from = {p.id: (p.village_code, p.household_id) for p in leaving}
    for person in leaving:
        person.household_id = new.id
        person.village_code = village_code
        person.relationship = (
            "head"
            if person.id == split.head_id
            else split.relationships.get(person.id, person.relationship)
        )
    await _flush(session, household_id=new.id)
    registered = HouseholdRegistered(**_household_facts(new))
    await _emit_household(session, HOUSEHOLD_REGISTERED, registered)
    for person in leaving:
        await session.refresh(person)
        from_village, from_household = moved_from[person.id]
        await _emit_person(
            session,
            PERSON_MOVED,
            PersonMoved(
                **_person_facts(person),
                from_village_code=from_village,
                from_household_id=from_household,
            ),
        )
    await _emit_household(
        session,
        HOUSEHOLD_SPLIT,
        HouseholdSplit(
            **_household_facts(source),
            new_household_id=new.id,
            person_ids=[p.id for p in leaving],
        ),
    )
    return source, new


async def merge_households(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    merge: HouseholdMergeRequest,
    caller: Caller,
) -> Household:
    """The other card's living members join this one and the other card is dissolved.

    The absorbed card's head becomes ``other`` when this card has a living head (and stays head
    when it has none), unless ``relationships`` says otherwise; everyone else keeps their
    relationship unless told. Deceased and moved people stay on the dissolved card (history).
    """
    if merge.household_id == household_id:
        raise InvalidChange("a household cannot merge with itself", field="household_id")
    found = await _locked_households(session, [household_id, merge.household_id], caller)
    survivor, absorbed = found.get(household_id), found.get(merge.household_id)
    if survivor is None:
        raise HouseholdNotFound()
    if absorbed is None:
        raise UnknownHousehold(f"no household {merge.household_id}", field="household_id")
    for household in (survivor, absorbed):
        if household.status == "dissolved":
            raise HouseholdDissolved(f"household {household.id} was merged into another one")
    has_head = (
        await session.scalar(
            select(Person.id).where(
                Person.household_id == survivor.id,
                Person.status == "alive",
                Person.relationship == "head",
            )
        )
        is not None
    )
    joining = await _locked_members(session, absorbed.id)
    _check_relationships(merge.relationships, [p.id for p in joining])
    moved_from = {p.id: (p.village_code, p.household_id) for p in joining}
    for person in joining:
        default = "other" if person.relationship == "head" and has_head else person.relationship
        person.household_id = survivor.id
        person.village_code = survivor.village_code
        person.relationship = merge.relationships.get(person.id, default)
    absorbed.status = "dissolved"
    await _flush(session, household_id=survivor.id)
    await session.refresh(absorbed)
    for person in joining:
        await session.refresh(person)
        from_village, from_household = moved_from[person.id]
        await _emit_person(
            session,
            PERSON_MOVED,
            PersonMoved(
                **_person_facts(person),
                from_village_code=from_village,
                from_household_id=from_household,
            ),
        )
    await _emit_household(
        session,
        HOUSEHOLD_UPDATED,
        HouseholdUpdated(**_household_facts(absorbed), changed=["status"]),
    )
    await _emit_household(
        session,
        HOUSEHOLD_MERGED,
        HouseholdMerged(
            **_household_facts(survivor),
            merged_household_id=absorbed.id,
            person_ids=[p.id for p in joining],
        ),
    )
    return survivor
