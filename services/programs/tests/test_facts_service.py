"""The read model's use cases called directly, on a session rolled back after each test: the
household upsert, a card's living members, and a person's facts with their card's in one read."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from programs.facts.service import (
    apply_household_fact,
    apply_person_fact,
    household_members,
    load_person_facts,
)
from programs.models import HouseholdFact
from shared.testing import stable_uuid

from .factories import KOTA_BENGKULU_VILLAGE
from .registry_events import POOR_HOUSE

AS_OF = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def known_household(
    session: AsyncSession, household_id: uuid.UUID, *, version: int = 1, **overrides: Any
) -> uuid.UUID:
    """A card as the registry's household event would leave it, through the consumer's use case."""
    await apply_household_fact(
        session,
        **{
            "household_id": household_id,
            "village_code": KOTA_BENGKULU_VILLAGE,
            **POOR_HOUSE,
            "version": version,
            "as_of": AS_OF,
            **overrides,
        },
    )
    return household_id


async def member(
    session: AsyncSession,
    person_id: uuid.UUID,
    household_id: uuid.UUID | None,
    *,
    status: str = "alive",
    relationship: str = "child",
    birth_date: date = date(2014, 5, 1),
) -> uuid.UUID:
    await apply_person_fact(
        session,
        person_id=person_id,
        household_id=household_id,
        village_code=KOTA_BENGKULU_VILLAGE,
        birth_date=birth_date,
        sex="F",
        status=status,
        relationship=relationship,
        disability="none",
        version=1,
        as_of=AS_OF,
    )
    return person_id


async def stored(session: AsyncSession, household_id: uuid.UUID) -> HouseholdFact:
    fact = await session.scalar(
        select(HouseholdFact)
        .where(HouseholdFact.household_id == household_id)
        .execution_options(populate_existing=True)
    )
    assert fact is not None
    return fact


class TestApplyHouseholdFact:
    async def test_a_higher_version_replaces_the_fact(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        household_id = await known_household(programs_session, stable_uuid(seed))
        await known_household(programs_session, household_id, version=2, decile=None)
        fact = await stored(programs_session, household_id)
        assert (fact.version, fact.decile) == (2, None)

    @pytest.mark.parametrize("version", [1, 2], ids=["older", "same"])
    async def test_an_older_or_the_same_version_changes_nothing(
        self, programs_session: AsyncSession, seed: str, version: int
    ) -> None:
        household_id = await known_household(programs_session, stable_uuid(seed), version=2)
        await known_household(
            programs_session, household_id, version=version, decile=9, status="dissolved"
        )
        fact = await stored(programs_session, household_id)
        assert (fact.version, fact.decile, fact.status) == (2, 2, "active")


class TestHouseholdMembers:
    async def test_only_the_living_on_the_card_in_id_order(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        card, other_card = stable_uuid(f"{seed}/card"), stable_uuid(f"{seed}/other card")
        living = sorted(
            [
                await member(
                    programs_session, stable_uuid(f"{seed}/head"), card, relationship="head"
                ),
                await member(programs_session, stable_uuid(f"{seed}/child"), card),
            ]
        )
        await member(programs_session, stable_uuid(f"{seed}/dead"), card, status="deceased")
        await member(programs_session, stable_uuid(f"{seed}/gone"), card, status="moved")
        await member(programs_session, stable_uuid(f"{seed}/elsewhere"), other_card)
        await member(programs_session, stable_uuid(f"{seed}/cardless"), None)
        members = await household_members(programs_session, card)
        assert [m.person_id for m in members] == living

    async def test_a_card_nobody_is_on_has_none(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        assert await household_members(programs_session, stable_uuid(seed)) == []


class TestLoadPersonFacts:
    async def test_the_person_their_card_and_its_living_members_in_one_read(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        card = await known_household(programs_session, stable_uuid(f"{seed}/card"), decile=1)
        person_id = await member(
            programs_session,
            stable_uuid(f"{seed}/child"),
            card,
            birth_date=date(2014, 5, 1),
        )
        await member(programs_session, stable_uuid(f"{seed}/head"), card, relationship="head")
        await member(programs_session, stable_uuid(f"{seed}/dead"), card, status="deceased")
        loaded = await load_person_facts(programs_session, person_id, on=date(2026, 4, 30))
        assert loaded is not None
        assert loaded.household is not None
        assert (loaded.person.person_id, loaded.person.relationship) == (person_id, "child")
        assert (loaded.household.household_id, loaded.household.decile) == (card, 1)
        assert (loaded.living_members, loaded.on, loaded.age) == (2, date(2026, 4, 30), 11)

    @pytest.mark.parametrize(
        ("on", "age"),
        [(date(2026, 2, 28), 9), (date(2026, 3, 1), 10), (date(2028, 2, 29), 12)],
    )
    async def test_age_counts_completed_years(
        self, programs_session: AsyncSession, seed: str, on: date, age: int
    ) -> None:
        person_id = await member(
            programs_session, stable_uuid(seed), None, birth_date=date(2016, 2, 29)
        )
        loaded = await load_person_facts(programs_session, person_id, on=on)
        assert loaded is not None
        assert loaded.age == age

    async def test_a_person_on_a_card_programs_has_no_event_of(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        card = stable_uuid(f"{seed}/card")
        person_id = await member(programs_session, stable_uuid(f"{seed}/head"), card)
        await member(programs_session, stable_uuid(f"{seed}/spouse"), card)
        loaded = await load_person_facts(programs_session, person_id, on=date(2026, 12, 1))
        assert loaded is not None
        assert (loaded.household, loaded.living_members) == (None, 2)

    async def test_a_person_on_no_card(self, programs_session: AsyncSession, seed: str) -> None:
        person_id = await member(programs_session, stable_uuid(seed), None)
        await member(programs_session, stable_uuid(f"{seed}/another cardless"), None)
        loaded = await load_person_facts(programs_session, person_id, on=date(2026, 12, 1))
        assert loaded is not None
        assert (loaded.household, loaded.living_members) == (None, 0)

    async def test_a_person_the_registry_never_announced(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        unknown = await load_person_facts(programs_session, stable_uuid(seed), on=date(2026, 12, 1))
        assert unknown is None
