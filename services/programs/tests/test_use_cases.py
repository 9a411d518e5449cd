"""Programs' use cases called directly, on a session rolled back after each test: enrolment
rules and the registry's facts without HTTP or the broker, leaving no row behind."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from programs.enrolment.schemas import EnrolmentCreate
from programs.enrolment.service import create_enrolment, read_enrolment
from programs.errors import AlreadyEnrolled, EnrolmentNotFound, PersonNotKnown
from programs.events import ENROLMENT_CREATED
from programs.facts.service import (
    apply_household_fact,
    apply_person_fact,
    list_person_facts,
    read_person_fact,
    record_referral,
)
from shared.testing import make_caller, stable_uuid, staged_event_types

from .factories import BENGKULU_SELATAN_VILLAGE, KOTA_BENGKULU_VILLAGE

OFFICER = make_caller(scopes=["programs:read", "programs:enrol"])
KOTA_BENGKULU_OFFICER = make_caller(scopes=["programs:read", "programs:enrol"], regions=["1771"])
AS_OF = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
# Villages of Kota Bengkulu no other test of programs puts facts in.
QUIET_VILLAGE = "1771031003"
QUIET_NEIGHBOUR = "1771031004"


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def known_person(
    session: AsyncSession,
    person_id: uuid.UUID,
    *,
    village_code: str = KOTA_BENGKULU_VILLAGE,
    version: int | None = 1,
    as_of: datetime = AS_OF,
    status: str = "alive",
) -> uuid.UUID:
    """A fact as the registry's events would leave it, through the consumer's use cases: a
    girl of twelve heading a card of her own in decile 1 (every seeded child programme admits
    her)."""
    card = uuid.uuid5(person_id, "card")
    await apply_household_fact(
        session,
        household_id=card,
        village_code=village_code,
        decile=1,
        status="active",
        house_fit=False,
        floor="earth",
        wall="bamboo",
        roof="zinc",
        water="unprotected",
        sanitation="none",
        electricity="none",
        version=1,
        as_of=as_of,
    )
    await apply_person_fact(
        session,
        person_id=person_id,
        village_code=village_code,
        birth_date=date(2014, 5, 1),
        sex="F",
        status=status,
        version=version,
        as_of=as_of,
        household_id=card,
        relationship="head",
    )
    return person_id


class TestCreateEnrolment:
    async def test_enrols_in_the_persons_village_and_stages_the_event(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = await known_person(programs_session, stable_uuid(seed))
        enrolment = await create_enrolment(
            programs_session,
            enrolment_in=EnrolmentCreate(person_id=person_id, programme="PKH"),
            caller=OFFICER,
        )
        assert (enrolment.region_code, enrolment.status, enrolment.enrolled_by_agency) == (
            KOTA_BENGKULU_VILLAGE,
            "active",
            "KEMENSOS",
        )
        assert await staged_event_types(programs_session, key=str(enrolment.id)) == [
            ENROLMENT_CREATED
        ]

    async def test_enrols_once_per_programme(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = await known_person(programs_session, stable_uuid(seed))
        sekolah_rakyat = EnrolmentCreate(person_id=person_id, programme="SEKOLAH_RAKYAT")
        pbi_jk = EnrolmentCreate(person_id=person_id, programme="PBI_JK")
        await create_enrolment(programs_session, enrolment_in=sekolah_rakyat, caller=OFFICER)
        await create_enrolment(programs_session, enrolment_in=pbi_jk, caller=OFFICER)
        with pytest.raises(AlreadyEnrolled, match="SEKOLAH_RAKYAT enrolment is already active"):
            await create_enrolment(programs_session, enrolment_in=sekolah_rakyat, caller=OFFICER)
        # The refusal rolled back its savepoint only: the unit of work goes on.
        bpnt = EnrolmentCreate(person_id=person_id, programme="BPNT")
        assert (await create_enrolment(programs_session, enrolment_in=bpnt, caller=OFFICER)).id

    async def test_a_person_the_registry_never_announced_is_not_known(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        with pytest.raises(PersonNotKnown):
            await create_enrolment(
                programs_session,
                enrolment_in=EnrolmentCreate(person_id=stable_uuid(seed), programme="BLT"),
                caller=OFFICER,
            )

    async def test_a_person_outside_the_callers_regions_is_not_known(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = await known_person(
            programs_session, stable_uuid(seed), village_code=BENGKULU_SELATAN_VILLAGE
        )
        with pytest.raises(PersonNotKnown):
            await create_enrolment(
                programs_session,
                enrolment_in=EnrolmentCreate(person_id=person_id, programme="BLT"),
                caller=KOTA_BENGKULU_OFFICER,
            )


class TestReadEnrolment:
    async def test_an_enrolment_outside_the_callers_regions_reads_as_missing(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = await known_person(
            programs_session, stable_uuid(seed), village_code=BENGKULU_SELATAN_VILLAGE
        )
        enrolment = await create_enrolment(
            programs_session,
            enrolment_in=EnrolmentCreate(person_id=person_id, programme="BPNT"),
            caller=OFFICER,
        )
        assert (
            await read_enrolment(programs_session, enrolment_id=enrolment.id, caller=OFFICER)
            is enrolment
        )
        with pytest.raises(EnrolmentNotFound):
            await read_enrolment(
                programs_session, enrolment_id=enrolment.id, caller=KOTA_BENGKULU_OFFICER
            )


class TestPersonFacts:
    async def test_an_older_version_never_overwrites_a_newer_fact(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = stable_uuid(seed)
        await known_person(programs_session, person_id, version=2, status="deceased")
        await known_person(programs_session, person_id, version=1, as_of=AS_OF + timedelta(days=1))
        fact = await read_person_fact(
            programs_session, person_id=person_id, caller=OFFICER, purpose="use-case test"
        )
        assert (fact.status, fact.as_of) == ("deceased", AS_OF)

    async def test_referrals_are_counted_once_each(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        person_id = await known_person(programs_session, stable_uuid(seed))
        referral = {
            "referral_id": stable_uuid(f"{seed}/referral"),
            "person_id": person_id,
            "service_type": "health_check",
            "region_code": KOTA_BENGKULU_VILLAGE,
            "referred_at": AS_OF,
        }
        await record_referral(programs_session, **referral)
        await record_referral(programs_session, **referral)  # the event delivered again
        fact = await read_person_fact(
            programs_session, person_id=person_id, caller=OFFICER, purpose="use-case test"
        )
        assert fact.referral_count == 1

    async def test_an_officer_lists_only_their_region(
        self, programs_session: AsyncSession, seed: str
    ) -> None:
        inside = [
            await known_person(programs_session, stable_uuid(f"{seed}/{n}"), village_code=village)
            for n, village in enumerate([QUIET_VILLAGE, QUIET_VILLAGE])
        ]
        await known_person(
            programs_session, stable_uuid(f"{seed}/next door"), village_code=QUIET_NEIGHBOUR
        )
        village_officer = make_caller(scopes=["programs:read"], regions=[QUIET_VILLAGE])
        facts, next_cursor = await list_person_facts(
            programs_session,
            caller=village_officer,
            purpose="use-case test",
            region_prefix=None,
            after=None,
            limit=10,
        )
        assert ([fact.person_id for fact in facts], next_cursor) == (sorted(inside), None)
