"""Events programs keeps its read models from. Payload models are this service's own reading of
the producers' contracts (checked against their JSON Schemas in tests/), never imports."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from programs.facts import service as facts
from shared.consumer import Handler
from shared.envelope import CloudEvent
from shared.service import ConsumerSpec


class RegistryPerson(BaseModel):
    """What programs reads of `registry.person.*.v1`."""

    person_id: uuid.UUID
    village_code: str = Field(pattern=r"^[0-9]{10}$")
    birth_date: date
    sex: Literal["M", "F"]
    status: Literal["alive", "deceased", "moved"]
    # The registry's row version (always sent today); absent from an older producer.
    version: int | None = Field(default=None, ge=1)


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
        village_code=person.village_code,
        birth_date=person.birth_date,
        sex=person.sex,
        status=person.status,
        version=person.version,
        as_of=event.time,
    )


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


HANDLERS: dict[str, Handler[Any]] = {
    # Every person event carries the same snapshot; the highest registry version wins.
    "registry.person.registered.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.updated.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.died.v1": Handler(RegistryPerson, on_registry_person),
    "registry.person.moved.v1": Handler(RegistryPerson, on_registry_person),
    "referrals.referral.created.v1": Handler(ReferralCreated, on_referral_created),
}

CONSUMERS = [
    ConsumerSpec(
        name="programs",
        topics=["registry.person.v1", "referrals.referral.v1"],
        handlers=HANDLERS,
    )
]
