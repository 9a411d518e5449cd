"""Programs use cases; they take the caller's session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from programs.catalogue import service as catalogue
from programs.enrolment.schemas import EnrolmentCreate
from programs.errors import (
    AlreadyEnrolled,
    EnrolmentNotFound,
    NotEligible,
    PersonNotKnown,
    ProgrammeNotFound,
    UnknownProgramme,
)
from programs.events import ENROLMENT_CREATED, ENROLMENT_TOPIC, SOURCE, EnrolmentCreated
from programs.facts.service import load_person_facts
from programs.models import Enrolment
from shared.auth import Caller
from shared.outbox import add_event

__all__ = ["create_enrolment", "read_enrolment"]


async def create_enrolment(
    session: AsyncSession, *, enrolment_in: EnrolmentCreate, caller: Caller
) -> Enrolment:
    """Enrol a person (for a household programme: their family card) if the programme's rule in
    force admits them today; the decision's rule version and explanation stay with the
    enrolment, and a refusal names the clauses that failed."""
    try:
        programme, rule = await catalogue.programme_in_force(session, enrolment_in.programme)
    except ProgrammeNotFound as exc:
        raise UnknownProgramme(str(exc), field="programme") from exc
    loaded = await load_person_facts(session, enrolment_in.person_id, on=catalogue.today())
    if loaded is None or not caller.may_see(loaded.person.village_code):
        raise PersonNotKnown(
            "register the person in the registry first; programs learns of them from its events",
            field="person_id",
        )
    decision = catalogue.decision_of(programme, rule, loaded)
    if not decision.eligible:
        raise NotEligible(
            f"{programme.code} rule version {rule.version} refuses: {'; '.join(decision.failed)}",
            rule_version=rule.version,
            errors=[
                {"field": "body.person_id", "message": clause, "type": "rule_clause_failed"}
                for clause in decision.failed
            ],
        )
    household_id = loaded.person.household_id
    enrolment = Enrolment(
        id=uuid.uuid4(),
        person_id=loaded.person.person_id,
        programme=programme.code,
        unit=programme.unit,
        household_id=household_id,
        region_code=loaded.person.village_code,
        status="active",
        enrolled_by_agency=caller.agency,
        rule_version=rule.version,
        decision=decision.explanation.model_dump(mode="json"),
    )
    try:
        # Added inside the savepoint, so a refused row leaves the session usable.
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError as exc:
        whose = "the family card's" if programme.unit == "household" else "an"
        raise AlreadyEnrolled(
            f"{enrolment_in.programme} enrolment is already active ({whose} enrolment)"
        ) from exc
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
            programme=enrolment.programme,
            region_code=enrolment.region_code,
            household_id=enrolment.household_id,
            rule_version=enrolment.rule_version,
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
