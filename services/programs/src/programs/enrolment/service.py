"""Programs use cases; they take the caller's session and never commit."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from programs.catalogue import service as catalogue
from programs.enrolment.schemas import EnrolmentCreate, EnrolmentFilter
from programs.errors import (
    AlreadyEnrolled,
    EnrolmentNotFound,
    NotEligible,
    PersonNotKnown,
    ProgrammeNotFound,
    UnknownProgramme,
)
from programs.events import (
    ENROLMENT_CREATED,
    ENROLMENT_TERMINATED,
    ENROLMENT_TOPIC,
    SOURCE,
    EnrolmentCreated,
    EnrolmentTerminated,
)
from programs.facts.service import load_person_facts
from programs.models import Enrolment, EnrolmentTransition, in_callers_regions
from shared.auth import Caller
from shared.outbox import add_event

__all__ = [
    "create_enrolment",
    "list_enrolments",
    "read_enrolment",
    "read_enrolment_history",
    "terminate_on_death",
]

# Statuses a death ends (graduated and terminated enrolments are over already).
_ENDED_BY_DEATH = ("pending", "active", "suspended")


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
    session.add(
        EnrolmentTransition(
            enrolment_id=enrolment.id,
            from_status=None,
            to_status="active",
            reason=f"admitted under {programme.code} rule version {rule.version}",
            actor=caller.agency,
        )
    )
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


async def list_enrolments(
    session: AsyncSession, *, caller: Caller, filters: EnrolmentFilter
) -> tuple[list[Enrolment], uuid.UUID | None]:
    """One keyset page (by id) of the enrolments inside the caller's regions that match every
    filter given, and the cursor of the next page. "Is this person enrolled in PBI-JK?" is
    this list with ``person_id``, ``programme`` and ``status=active``."""
    statement = select(Enrolment).order_by(Enrolment.id).limit(filters.limit + 1)
    statement = statement.where(in_callers_regions(Enrolment.region_code, caller))
    for column, value in (
        (Enrolment.programme, filters.programme),
        (Enrolment.status, filters.status),
        (Enrolment.person_id, filters.person_id),
        (Enrolment.household_id, filters.household_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if filters.region is not None:
        statement = statement.where(Enrolment.region_code.startswith(filters.region))
    if filters.after is not None:
        statement = statement.where(Enrolment.id > filters.after)
    rows = list(await session.scalars(statement))
    page = rows[: filters.limit]
    return page, page[-1].id if len(rows) > filters.limit else None


async def read_enrolment_history(
    session: AsyncSession, *, enrolment_id: uuid.UUID, caller: Caller
) -> list[EnrolmentTransition]:
    """Every status change of an enrolment the caller may see, oldest first."""
    await read_enrolment(session, enrolment_id=enrolment_id, caller=caller)
    rows = await session.scalars(
        select(EnrolmentTransition)
        .where(EnrolmentTransition.enrolment_id == enrolment_id)
        .order_by(EnrolmentTransition.id)
    )
    return list(rows)


async def terminate_on_death(
    session: AsyncSession, *, person_id: uuid.UUID, event_id: str, died_on: str | None
) -> list[uuid.UUID]:
    """End every open enrolment of a person the registry says has died, in the consumer's
    transaction: one statement locks and changes them, and their transitions and
    ``programs.enrolment.terminated.v1`` events commit with it. A second death event, or the
    same one redelivered, finds nothing open and changes nothing."""
    open_ones = (
        select(Enrolment.id, Enrolment.status)
        .where(Enrolment.person_id == person_id, Enrolment.status.in_(_ENDED_BY_DEATH))
        .with_for_update()
        .cte("open_ones")
    )
    ended = (
        await session.execute(
            update(Enrolment)
            .where(Enrolment.id == open_ones.c.id)
            .values(status="terminated", modified_at=func.now())
            .returning(
                Enrolment.id,
                Enrolment.programme,
                Enrolment.region_code,
                Enrolment.household_id,
                open_ones.c.status.label("previous_status"),
            )
            .execution_options(synchronize_session=False)
        )
    ).all()
    reason = f"the person died{f' on {died_on}' if died_on else ''} (registry event {event_id})"
    for row in ended:
        session.add(
            EnrolmentTransition(
                enrolment_id=row.id,
                from_status=row.previous_status,
                to_status="terminated",
                reason=reason,
                actor=f"registry:{event_id}",
            )
        )
        await add_event(
            session,
            source=SOURCE,
            topic=ENROLMENT_TOPIC,
            key=str(row.id),
            type=ENROLMENT_TERMINATED,
            data=EnrolmentTerminated(
                enrolment_id=row.id,
                person_id=person_id,
                programme=row.programme,
                region_code=row.region_code,
                household_id=row.household_id,
                previous_status=row.previous_status,
                reason=reason,
            ),
        )
    return [row.id for row in ended]
