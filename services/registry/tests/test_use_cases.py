"""The registry's use cases called directly, on a session rolled back after each test: the rules
of people and family cards without HTTP, and without leaving a row behind."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import (
    HouseholdAlreadyHasHead,
    InvalidChange,
    KkAlreadyRegistered,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonDeceased,
    PersonNotFound,
)
from registry.household.schemas import HouseholdCreate, HouseholdSplitRequest
from registry.household.service import register_household, split_household
from registry.models import Household, Person
from registry.person.schemas import PersonCreate, PersonDeath
from registry.person.service import read_person_versions, record_death, register_person
from registry.settings import RegistrySettings
from shared.testing import fetch, make_caller, stable_number, staged_event_types

from .factories import DISTRICT, OTHER_REGENCY_VILLAGE, VILLAGE, make_nik

CLERK = make_caller(scopes=["registry:read", "registry:write"])
DEATH = PersonDeath(death_date=date(2025, 1, 10), source="dukcapil")


def person_in(seed: str, **fields: object) -> PersonCreate:
    """A valid registration whose NIK and birth date follow from ``seed`` alone."""
    born = date(1950, 1, 1) + timedelta(days=stable_number(f"{seed}/born", below=20_000))
    sex = "F" if stable_number(f"{seed}/sex", below=2) else "M"
    nik = make_nik(birth_date=born, sex=sex, serial=stable_number(seed, below=9_999) + 1)
    body = {"nik": nik, "full_name": "Warga Uji", "birth_date": born, "sex": sex}
    return PersonCreate.model_validate({"village_code": VILLAGE, **body, **fields})


def household_in(seed: str) -> HouseholdCreate:
    """A valid family card whose KK number follows from ``seed`` alone."""
    issued = date(2000, 1, 1) + timedelta(days=stable_number(f"{seed}/issued", below=9_000))
    serial = stable_number(seed, below=9_999) + 1
    return HouseholdCreate(
        kk=f"{DISTRICT}{issued:%d%m%y}{serial:04d}",
        village_code=VILLAGE,
        address="Jl. Merapi No. 12, RT 003 RW 001",
        decile=2,
    )


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


class TestRegisterPerson:
    async def test_registers_and_stages_the_event_in_the_same_transaction(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        person = await register_person(registry_session, person_in=person_in(seed), caller=CLERK)
        assert (person.status, person.version) == ("alive", 1)
        assert await staged_event_types(registry_session, key=str(person.id)) == [
            "registry.person.registered.v1"
        ]

    async def test_a_nik_is_registered_once(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        await register_person(registry_session, person_in=person_in(seed), caller=CLERK)
        with pytest.raises(NikAlreadyRegistered):
            await register_person(registry_session, person_in=person_in(seed), caller=CLERK)

    async def test_a_village_outside_the_callers_regions_is_refused(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        regional = make_caller(scopes=["registry:write"], regions=[OTHER_REGENCY_VILLAGE[:4]])
        with pytest.raises(OutsideRegion):
            await register_person(registry_session, person_in=person_in(seed), caller=regional)


class TestRollback:
    # The same NIK in both runs: whichever runs second would meet the first one's person.
    @pytest.mark.parametrize("run", [1, 2])
    async def test_a_person_registered_in_one_test_is_gone_in_the_next(
        self, registry_session: AsyncSession, registry_settings: RegistrySettings, run: int
    ) -> None:
        registration = person_in("the same person in every run")
        already = select(Person.id).where(Person.nik == registration.nik)
        assert await registry_session.scalar(already) is None
        person = await register_person(registry_session, person_in=registration, caller=CLERK)
        # Uncommitted: another connection (the API's, a relay's) sees neither row nor event.
        row = await fetch(registry_settings, "SELECT 1 FROM person WHERE id = $1", person.id)
        event = await fetch(
            registry_settings, "SELECT 1 FROM outbox_event WHERE key = $1", str(person.id)
        )
        assert (row, event) == ([], [])


class TestRecordDeath:
    async def test_a_death_is_recorded_once(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        person = await register_person(registry_session, person_in=person_in(seed), caller=CLERK)
        died = await record_death(registry_session, person_id=person.id, death=DEATH, caller=CLERK)
        assert (died.status, died.death_date, died.version) == ("deceased", DEATH.death_date, 2)
        with pytest.raises(PersonDeceased, match="already recorded on 2025-01-10"):
            await record_death(registry_session, person_id=person.id, death=DEATH, caller=CLERK)
        assert await staged_event_types(registry_session, key=str(person.id)) == [
            "registry.person.registered.v1",
            "registry.person.died.v1",
        ]

    async def test_a_death_before_the_birth_is_refused(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        registration = person_in(seed)
        person = await register_person(registry_session, person_in=registration, caller=CLERK)
        before = PersonDeath(
            death_date=registration.birth_date - timedelta(days=1), source="family"
        )
        with pytest.raises(InvalidChange, match="before the birth date") as refused:
            await record_death(registry_session, person_id=person.id, death=before, caller=CLERK)
        assert refused.value.extensions["field"] == "death_date"


class TestReadPersonVersions:
    async def test_every_version_is_read_and_the_read_audited(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        person = await register_person(registry_session, person_in=person_in(seed), caller=CLERK)
        await record_death(registry_session, person_id=person.id, death=DEATH, caller=CLERK)
        versions = await read_person_versions(
            registry_session, person_id=person.id, caller=CLERK, purpose="use-case test"
        )
        assert [(v.version, v.data["status"]) for v in versions] == [
            (1, "alive"),
            (2, "deceased"),
        ]
        assert versions[0].valid_to == versions[1].valid_from
        assert versions[1].valid_to is None
        audited = await fetch_in(
            registry_session,
            "SELECT action, purpose FROM audit_log WHERE resource_id = :id",
            id=str(person.id),
        )
        assert audited == [("read_history", "use-case test")]

    async def test_a_person_outside_the_callers_regions_reads_as_missing(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        person = await register_person(registry_session, person_in=person_in(seed), caller=CLERK)
        regional = make_caller(scopes=["registry:read"], regions=[OTHER_REGENCY_VILLAGE[:4]])
        with pytest.raises(PersonNotFound):
            await read_person_versions(
                registry_session, person_id=person.id, caller=regional, purpose="use-case test"
            )


class TestHouseholds:
    async def test_a_kk_is_registered_once(self, registry_session: AsyncSession, seed: str) -> None:
        household = await register_household(
            registry_session, household_in=household_in(seed), caller=CLERK
        )
        assert (household.status, household.version) == ("active", 1)
        with pytest.raises(KkAlreadyRegistered):
            await register_household(
                registry_session, household_in=household_in(seed), caller=CLERK
            )

    async def test_a_card_has_one_living_head(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        household = await register_household(
            registry_session, household_in=household_in(seed), caller=CLERK
        )
        head = {"household_id": household.id, "relationship": "head"}
        await register_person(registry_session, person_in=person_in(seed, **head), caller=CLERK)
        # Refused by the database's constraint at the flush, inside the test's transaction.
        with pytest.raises(HouseholdAlreadyHasHead):
            await register_person(
                registry_session, person_in=person_in(f"{seed}/second", **head), caller=CLERK
            )

    async def test_members_split_off_to_a_new_card(
        self, registry_session: AsyncSession, seed: str
    ) -> None:
        household = await register_household(
            registry_session, household_in=household_in(seed), caller=CLERK
        )
        members = [
            await register_person(
                registry_session,
                person_in=person_in(
                    f"{seed}/member {n}", household_id=household.id, relationship=relationship
                ),
                caller=CLERK,
            )
            for n, relationship in enumerate(("head", "child", "child"))
        ]
        leaving = [member.id for member in members[1:]]
        split = HouseholdSplitRequest(
            person_ids=leaving, kk=household_in(f"{seed}/new card").kk, head_id=leaving[0]
        )
        old, new = await split_household(
            registry_session, household_id=household.id, split=split, caller=CLERK
        )
        cards = await registry_session.execute(
            select(Person.relationship, Household.kk)
            .join(Household, Person.household_id == Household.id)
            .where(Person.id.in_([member.id for member in members]))
            .order_by(Person.relationship)
        )
        assert sorted(tuple(row) for row in cards) == sorted(
            [("head", old.kk), ("head", new.kk), ("child", new.kk)]
        )
        assert await staged_event_types(registry_session, key=str(old.id)) == [
            "registry.household.registered.v1",
            "registry.household.split.v1",
        ]


async def fetch_in(session: AsyncSession, sql: str, **params: object) -> list[tuple[object, ...]]:
    """Rows of ``sql`` as the test's own transaction sees them (``fetch`` sees only commits)."""
    return [tuple(row) for row in await session.execute(text(sql), params)]
