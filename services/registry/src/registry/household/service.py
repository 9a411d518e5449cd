"""Households' use cases: register a family card, update, move, split, merge, read the versions.

(Reads of the current card are lookups by KK, one audited statement: :mod:`registry.lookup`.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.changes import (
    HOUSING_FIELDS,
    check_village,
    emit_household,
    emit_moves,
    flush_or_problem,
    household_facts,
    household_for_change,
    locked_households,
    locked_members,
)
from registry.errors import (
    HouseholdDissolved,
    HouseholdNotFound,
    InvalidChange,
    InvalidKk,
    KkAlreadyRegistered,
    UnknownHousehold,
)
from registry.events import (
    HOUSEHOLD_DECILE_CHANGED,
    HOUSEHOLD_MERGED,
    HOUSEHOLD_REGISTERED,
    HOUSEHOLD_SPLIT,
    HOUSEHOLD_UPDATED,
    HouseholdDecileChanged,
    HouseholdMerged,
    HouseholdRegistered,
    HouseholdSplit,
    HouseholdUpdated,
)
from registry.history import VersionRead, read_versions
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdMergeRequest,
    HouseholdMoveRequest,
    HouseholdSplitRequest,
)
from registry.models import Household, HouseholdVersion, Person, Region
from registry.nik import kk_problems
from registry.projection import projection_for
from shared.auth import Caller

__all__ = [
    "merge_households",
    "read_household_versions",
    "move_household",
    "register_household",
    "split_household",
    "update_household",
]


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
    await check_village(session, household_in.village_code, caller, field="village_code")
    await _check_new_kk(session, household_in.kk)
    household = Household(id=uuid.uuid4(), status="active", **household_in.model_dump())
    session.add(household)
    await flush_or_problem(session)
    await session.refresh(household)
    await emit_household(
        session, HOUSEHOLD_REGISTERED, HouseholdRegistered(**household_facts(household))
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
    household = await household_for_change(session, household_id, caller)
    changed = {k: v for k, v in changes.items() if getattr(household, k) != v}
    if not changed:
        return household
    previous_decile = household.decile
    for name, value in changed.items():
        setattr(household, name, value)
    await flush_or_problem(session)
    await session.refresh(household)
    facts = household_facts(household)
    if attributes := sorted(changed.keys() - {"decile"}):
        await emit_household(
            session, HOUSEHOLD_UPDATED, HouseholdUpdated(**facts, changed=attributes)
        )
    if "decile" in changed:
        await emit_household(
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
    household = await household_for_change(session, household_id, caller)
    await check_village(session, move.village_code, caller, field="village_code")
    target = {"village_code": move.village_code, "address": move.address}
    if move.kk is not None and move.kk != household.kk:
        await _check_new_kk(session, move.kk)
        target["kk"] = move.kk
    changed = {k: v for k, v in target.items() if getattr(household, k) != v}
    if not changed:
        return household
    moving = [
        member
        for member in await locked_members(session, household.id)
        if member.village_code != move.village_code
    ]
    moved_from = {member.id: (member.village_code, household.id) for member in moving}
    for name, value in changed.items():
        setattr(household, name, value)
    for member in moving:
        member.village_code = move.village_code
    await flush_or_problem(session, household_id=household.id)
    await emit_moves(session, moving, moved_from)
    await session.refresh(household)
    await emit_household(
        session,
        HOUSEHOLD_UPDATED,
        HouseholdUpdated(**household_facts(household), changed=sorted(changed)),
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
    source = await household_for_change(session, household_id, caller)
    if len(set(split.person_ids)) != len(split.person_ids):
        raise InvalidChange("person_ids names someone twice", field="person_ids")
    if split.head_id not in split.person_ids:
        raise InvalidChange("the new head must be one of person_ids", field="head_id")
    _check_relationships(split.relationships, split.person_ids)
    if split.relationships.get(split.head_id, "head") != "head":
        raise InvalidChange("the new head's relationship is head", field="relationships")
    village_code = split.village_code or source.village_code
    await check_village(session, village_code, caller, field="village_code")
    await _check_new_kk(session, split.kk)
    leaving = await locked_members(session, source.id, split.person_ids)
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
    await flush_or_problem(session)
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
    await flush_or_problem(session, household_id=new.id)
    registered = HouseholdRegistered(**household_facts(new))
    await emit_household(session, HOUSEHOLD_REGISTERED, registered)
    await emit_moves(session, leaving, moved_from)
    await emit_household(
        session,
        HOUSEHOLD_SPLIT,
        HouseholdSplit(
            **household_facts(source),
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
    found = await locked_households(session, [household_id, merge.household_id], caller)
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
    joining = await locked_members(session, absorbed.id)
    _check_relationships(merge.relationships, [p.id for p in joining])
    moved_from = {p.id: (p.village_code, p.household_id) for p in joining}
    for person in joining:
        default = "other" if person.relationship == "head" and has_head else person.relationship
        person.household_id = survivor.id
        person.village_code = survivor.village_code
        person.relationship = merge.relationships.get(person.id, default)
    absorbed.status = "dissolved"
    await flush_or_problem(session, household_id=survivor.id)
    await session.refresh(absorbed)
    await emit_moves(session, joining, moved_from)
    await emit_household(
        session,
        HOUSEHOLD_UPDATED,
        HouseholdUpdated(**household_facts(absorbed), changed=["status"]),
    )
    await emit_household(
        session,
        HOUSEHOLD_MERGED,
        HouseholdMerged(
            **household_facts(survivor),
            merged_household_id=absorbed.id,
            person_ids=[p.id for p in joining],
        ),
    )
    return survivor


async def read_household_versions(
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
    return await read_versions(
        session,
        table=HouseholdVersion,
        owner=HouseholdVersion.household_id,
        record_id=household_id,
        resource_type="household",
        fields=projection_for(caller.scopes).household_fields,
        caller=caller,
        purpose=purpose,
        as_of=as_of,
    )
