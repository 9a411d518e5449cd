"""Programs use cases; they take the caller's session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from programs.enrolment.schemas import EnrolmentCreate
from programs.errors import AlreadyEnrolled, EnrolmentNotFound, PersonNotKnown
from programs.events import ENROLMENT_CREATED, ENROLMENT_TOPIC, SOURCE, EnrolmentCreated
from programs.models import Enrolment, PersonFact
from shared.auth import Caller
from shared.outbox import add_event

__all__ = ["create_enrolment", "read_enrolment"]


async def create_enrolment(
    session: AsyncSession, *, enrolment_in: EnrolmentCreate, caller: Caller
) -> Enrolment:
    fact = await session.get(PersonFact, enrolment_in.person_id)
    if fact is None or not caller.may_see(fact.village_code):
        raise PersonNotKnown(
            "register the person in the registry first; programs learns of them from its events",
            field="person_id",
        )
    enrolment = Enrolment(
        id=uuid.uuid4(),
        person_id=fact.person_id,
        programme=enrolment_in.programme,
        region_code=fact.village_code,
        status="active",
        enrolled_by_agency=caller.agency,
    )
    try:
        # Added inside the savepoint, so a refused row leaves the session usable.
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError as exc:
        raise AlreadyEnrolled(f"{enrolment_in.programme} enrolment is already active") from exc
    await session.refresh(enrolment)
    await add_event(
        session,
        source=SOURCE,
        topic=ENROLMENT_TOPIC,
        key=str(enrolment.id),
        type=ENROLMENT_CREATED,
        data=EnrolmentCreated(
            enrolment_id=enrolment.id,
            person_id=enrolment.person_id,
            programme=enrolment_in.programme,
            region_code=enrolment.region_code,
        ),
    )
    return enrolment


async def read_enrolment(
    session: AsyncSession, *, enrolment_id: uuid.UUID, caller: Caller
) -> Enrolment:
    enrolment = await session.get(Enrolment, enrolment_id)
    if enrolment is None or not caller.may_see(enrolment.region_code):
        raise EnrolmentNotFound()
    return enrolment
