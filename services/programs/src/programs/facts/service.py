"""Programs use cases; they take the caller's session and never commit.

The read model of the registry: ``person_fact`` and ``household_fact``, written only by the
registry's events (``apply_*``, one upsert each that never goes back to an older version), read
by the routes (region-walled, audited) and by eligibility (``load_person_facts``,
``household_members``: no caller, so the use case that calls them walls and audits).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from programs.errors import HouseholdFactNotFound, PersonFactNotFound
from programs.facts.schemas import HouseholdFactRead, PersonFactRead
from programs.models import HouseholdFact, PersonFact, ReferralFact, audit_log, in_callers_regions
from shared.audit import read_in_region, record_read
from shared.auth import Caller

__all__ = [
    "LIVING",
    "PersonFacts",
    "apply_household_fact",
    "apply_person_fact",
    "household_members",
    "list_person_facts",
    "load_person_facts",
    "read_household_fact",
    "read_person_fact",
    "record_referral",
]

# The status of a person who counts as a member of their card: not dead, and not gone from the
# recorded address (``moved``: the registry keeps the card until a new place is known).
LIVING = "alive"


async def read_person_fact(
    session: AsyncSession, *, person_id: uuid.UUID, caller: Caller, purpose: str
) -> PersonFactRead:
    facts, _ = await list_person_facts(
        session,
        caller=caller,
        purpose=purpose,
        region_prefix=None,
        after=None,
        limit=1,
        person_id=person_id,
    )
    if not facts:
        raise PersonFactNotFound()
    return facts[0]


async def list_person_facts(
    session: AsyncSession,
    *,
    caller: Caller,
    purpose: str,
    region_prefix: str | None,
    after: uuid.UUID | None,
    limit: int,
    person_id: uuid.UUID | None = None,
) -> tuple[list[PersonFactRead], uuid.UUID | None]:
    """Keyset page of facts inside the caller's regions, ordered by person id."""
    referrals = (
        select(func.count())
        .where(ReferralFact.person_id == PersonFact.person_id)
        .correlate(PersonFact)
        .scalar_subquery()
    )
    query = (
        select(PersonFact, referrals.label("referral_count"))
        .order_by(PersonFact.person_id)
        .limit(limit + 1)
    )
    query = query.where(in_callers_regions(PersonFact.village_code, caller))
    if region_prefix:
        query = query.where(PersonFact.village_code.startswith(region_prefix))
    if after is not None:
        query = query.where(PersonFact.person_id > after)
    if person_id is not None:
        query = query.where(PersonFact.person_id == person_id)
    rows = (await session.execute(query)).all()
    visible = [
        PersonFactRead.model_validate(fact).model_copy(update={"referral_count": count})
        for fact, count in rows[:limit]
    ]
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        resource_type="person_fact",
        resource_ids=[str(f.person_id) for f in visible],
    )
    next_cursor = rows[limit - 1][0].person_id if len(rows) > limit else None
    return visible, next_cursor


async def apply_person_fact(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    village_code: str,
    birth_date: date,
    sex: str,
    status: str,
    version: int | None,
    as_of: datetime,
    household_id: uuid.UUID | None = None,
    relationship: str = "other",
    disability: str = "none",
) -> None:
    """Upsert a registry fact unless a newer one is already applied (out-of-order safe).

    Newer means a higher registry row ``version``: an event at or below the stored version
    changes nothing, whatever its time says (the registry's clock and the relay's are not
    ours to compare). The test is in the upsert's WHERE, so it holds between concurrent
    consumers too. An event without a version (an older producer) is ordered by ``as_of``
    among facts that have none either, and never overwrites a versioned fact; a versioned
    event always replaces an unversioned fact. The card, relationship and disability default
    to the registry's own defaults (no card, ``other``, ``none``).
    """
    values = {
        "person_id": person_id,
        "household_id": household_id,
        "village_code": village_code,
        "birth_date": birth_date,
        "sex": sex,
        "status": status,
        "relationship": relationship,
        "disability": disability,
        "version": version,
        "as_of": as_of,
    }
    statement = insert(PersonFact).values(values)
    excluded = statement.excluded
    newer = (
        or_(PersonFact.version.is_(None), PersonFact.version < excluded.version)
        if version is not None
        else and_(PersonFact.version.is_(None), PersonFact.as_of <= excluded.as_of)
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[PersonFact.person_id],
            set_={k: excluded[k] for k in values if k != "person_id"},
            where=newer,
        )
    )


async def apply_household_fact(
    session: AsyncSession,
    *,
    household_id: uuid.UUID,
    village_code: str,
    decile: int | None,
    status: str,
    house_fit: bool,
    floor: str,
    wall: str,
    roof: str,
    water: str,
    sanitation: str,
    electricity: str,
    version: int,
    as_of: datetime,
) -> None:
    """Upsert a registry household fact unless one of the same or a higher ``version`` is
    applied: the test is the upsert's WHERE, so an older event changes nothing even between
    concurrent consumers (the rebuild beside the live consumer). Every household event carries
    a version, so there is no time-ordered fallback as for persons."""
    values = {
        "household_id": household_id,
        "village_code": village_code,
        "decile": decile,
        "status": status,
        "house_fit": house_fit,
        "floor": floor,
        "wall": wall,
        "roof": roof,
        "water": water,
        "sanitation": sanitation,
        "electricity": electricity,
        "version": version,
        "as_of": as_of,
    }
    statement = insert(HouseholdFact).values(values)
    excluded = statement.excluded
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[HouseholdFact.household_id],
            set_={k: excluded[k] for k in values if k != "household_id"},
            where=HouseholdFact.version < excluded.version,
        )
    )


async def household_members(session: AsyncSession, household_id: uuid.UUID) -> list[PersonFact]:
    """The living members of a card (``LIVING``), by person id: the people the registry's
    latest events put on it. The dead and the gone keep ``household_id`` but are not
    members."""
    rows = await session.scalars(
        select(PersonFact)
        .where(PersonFact.household_id == household_id, PersonFact.status == LIVING)
        .order_by(PersonFact.person_id)
    )
    return list(rows)


@dataclass(frozen=True)
class PersonFacts:
    """What programs knows of a person and their family card on the day ``on``: the input of
    eligibility rules. ``household`` is None for a person on no card, or on a card no
    household event has reached programs for (yet)."""

    person: PersonFact
    household: HouseholdFact | None
    living_members: int  # on the person's card, the person included when alive; 0 without one
    on: date

    @property
    def age(self) -> int:
        """Completed years on ``on`` (born 29 February: a year older on 1 March)."""
        born = self.person.birth_date
        return self.on.year - born.year - ((self.on.month, self.on.day) < (born.month, born.day))


async def load_person_facts(
    session: AsyncSession, person_id: uuid.UUID, *, on: date
) -> PersonFacts | None:
    """The person's fact, their card's and the card's living-member count in one statement;
    None when the registry has not told programs of the person (yet). No region wall and no
    audit: the calling use case has the caller."""
    member = aliased(PersonFact)
    members = (
        select(func.count())
        .where(member.household_id == PersonFact.household_id, member.status == LIVING)
        .correlate(PersonFact)
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(PersonFact, HouseholdFact, members)
            .outerjoin(HouseholdFact, HouseholdFact.household_id == PersonFact.household_id)
            .where(PersonFact.person_id == person_id)
        )
    ).one_or_none()
    if row is None:
        return None
    person, household, living_members = row
    return PersonFacts(person=person, household=household, living_members=living_members, on=on)


async def read_household_fact(
    session: AsyncSession, *, household_id: uuid.UUID, caller: Caller, purpose: str
) -> HouseholdFactRead:
    """A card's fact with its living members' ids, if it lies in the caller's regions; the read
    is audited (``household_fact``)."""
    household = await read_in_region(
        session,
        audit_log,
        HouseholdFact,
        household_id,
        caller=caller,
        purpose=purpose,
        region_of=lambda fact: fact.village_code,
        resource_type="household_fact",
        not_found=HouseholdFactNotFound,
    )
    members = await household_members(session, household_id)
    return HouseholdFactRead.model_validate(household).model_copy(
        update={"member_ids": [m.person_id for m in members]}
    )


async def record_referral(
    session: AsyncSession,
    *,
    referral_id: uuid.UUID,
    person_id: uuid.UUID,
    service_type: str,
    region_code: str,
    referred_at: datetime,
) -> None:
    await session.execute(
        insert(ReferralFact)
        .values(
            referral_id=referral_id,
            person_id=person_id,
            service_type=service_type,
            region_code=region_code,
            referred_at=referred_at,
        )
        .on_conflict_do_nothing()
    )
