"""Events programs keeps its read models from. Payload models are this service's own reading of
the producers' contracts (checked against their JSON Schemas in tests/), never imports.

Every registry event carries the whole snapshot of its person or household, so each type of a
topic has the same handler: the snapshot with the highest registry version wins. The registry
handlers are also what ``python -m programs rebuild-facts`` replays the topics through
(:mod:`programs.facts.rebuild`), so a rebuilt read model is the one the consumers build.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from programs.enrolment import service as enrolments
from programs.facts import service as facts
from programs.facts.lag import count_when_committed
from shared.consumer import Handler
from shared.envelope import CloudEvent
from shared.service import ConsumerSpec

REGISTRY_PERSON_TOPIC = "registry.person.v1"
REGISTRY_HOUSEHOLD_TOPIC = "registry.household.v1"
REGISTRY_TOPICS = (REGISTRY_PERSON_TOPIC, REGISTRY_HOUSEHOLD_TOPIC)


class RegistryPerson(BaseModel):
    """What programs reads of `registry.person.*.v1`.

    Relationship, disability and the housing facts of :class:`RegistryHousehold` are read as
    any string, as the registry's schema allows: the registry CHECKs their values and keeps
    them to 20 characters, the size of programs' columns (a longer one fails at the insert and
    is parked on the DLQ after its retries), and a value it adds later needs no release here.
    """

    person_id: uuid.UUID
    household_id: uuid.UUID | None = None
    village_code: str = Field(pattern=r"^[0-9]{10}$")
    birth_date: date
    sex: Literal["M", "F"]
    status: Literal["alive", "deceased", "moved"]
    relationship: str = "other"
    disability: str = "none"
    # The registry's row version (always sent today); absent from an older producer.
    version: int | None = Field(default=None, ge=1)
    # Sent with registry.person.died.v1.
    death_date: date | None = None


class RegistryHousehold(BaseModel):
    """What programs reads of `registry.household.*.v1` (every type carries this snapshot).

    The defaults are the registry's own, as its schema documents them (an absent ``version``
    is 1); the split and merge details (``person_ids``...) are not read: each moved member has
    a ``registry.person.moved.v1`` of its own.
    """

    household_id: uuid.UUID
    village_code: str = Field(pattern=r"^[0-9]{10}$")
    decile: int | None = Field(default=None, ge=1, le=10)
    house_fit: bool = True
    floor: str = "other"
    wall: str = "other"
    roof: str = "other"
    water: str = "other"
    sanitation: str = "none"
    electricity: str = "none"
    status: Literal["active", "dissolved"] = "active"
    version: int = Field(default=1, ge=1)


class ReferralCreated(BaseModel):
    """What programs reads of `referrals.referral.created.v1`."""

    referral_id: uuid.UUID
    person_id: uuid.UUID
    service_type: str = Field(max_length=50)
    region_code: str = Field(pattern=r"^[0-9]{2,10}$")


async def on_registry_person(
    session: AsyncSession, person: RegistryPerson, event: CloudEvent
) -> None:
    await facts.apply_person_fact(
        session,
        person_id=person.person_id,
        household_id=person.household_id,
        village_code=person.village_code,
        birth_date=person.birth_date,
        sex=person.sex,
        status=person.status,
        relationship=person.relationship,
        disability=person.disability,
        version=person.version,
        as_of=event.time,
    )
    if person.status == "deceased":
        # Death ends every open enrolment of the person, in this event's transaction.
        await enrolments.terminate_on_death(
            session,
            person_id=person.person_id,
            event_id=event.id,
            died_on=person.death_date.isoformat() if person.death_date else None,
        )
    count_when_committed(session, event.time)


async def on_registry_household(
    session: AsyncSession, household: RegistryHousehold, event: CloudEvent
) -> None:
    await facts.apply_household_fact(
        session,
        household_id=household.household_id,
        village_code=household.village_code,
        decile=household.decile,
        status=household.status,
        house_fit=household.house_fit,
        floor=household.floor,
        wall=household.wall,
        roof=household.roof,
        water=household.water,
        sanitation=household.sanitation,
        electricity=household.electricity,
        version=household.version,
        as_of=event.time,
    )
    count_when_committed(session, event.time)


async def on_referral_created(
    session: AsyncSession, referral: ReferralCreated, event: CloudEvent
) -> None:
    await facts.record_referral(
        session,
        referral_id=referral.referral_id,
        person_id=referral.person_id,
        service_type=referral.service_type,
        region_code=referral.region_code,
        referred_at=event.time,
    )


# The registry's read model: what `python -m programs rebuild-facts` replays.
REGISTRY_HANDLERS: dict[str, Handler[Any]] = {
    # Every person event carries the same snapshot; the highest registry version wins.
    "registry.person.registered.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.updated.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.died.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.moved.v1": Handler(RegistryPerson, on_registry_person),
    # So does every household event, split and merge included.
    "registry.household.registered.v1": Handler(RegistryHousehold, on_registry_household),
    "registry.household.updated.v1": Handler(RegistryHousehold, on_registry_household),
    "registry.household.decile_changed.v1": Handler(RegistryHousehold, on_registry_household),
    "registry.household.split.v1": Handler(RegistryHousehold, on_registry_household),
    "registry.household.merged.v1": Handler(RegistryHousehold, on_registry_household),
}

HANDLERS: dict[str, Handler[Any]] = {
    **REGISTRY_HANDLERS,
    "referrals.referral.created.v1": Handler(ReferralCreated, on_referral_created),
}

CONSUMER = "programs"
CONSUMERS = [
    ConsumerSpec(
        name=CONSUMER,
        topics=[*REGISTRY_TOPICS, "referrals.referral.v1"],
        handlers=HANDLERS,
    )
]
