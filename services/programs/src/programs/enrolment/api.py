"""Programs REST API (coordination): enrolments."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from programs.catalogue.schemas import CODE_PATTERN
from programs.dependencies import Enroller, Reader
from programs.enrolment import service
from programs.enrolment.schemas import (
    EnrolmentCreate,
    EnrolmentFilter,
    EnrolmentHistory,
    EnrolmentPage,
    EnrolmentRead,
    EnrolmentStatus,
    EnrolmentTransitionRead,
)
from programs.errors import (
    AlreadyEnrolled,
    EnrolmentNotFound,
    NotEligible,
    PersonNotKnown,
    UnknownProgramme,
)
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1")


@router.post(
    "/enrolments",
    status_code=201,
    response_model=EnrolmentRead,
    tags=["enrolments"],
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        PersonNotKnown,
        UnknownProgramme,
        NotEligible,
        AlreadyEnrolled,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def create_enrolment(
    enrolment_in: EnrolmentCreate,
    session: SessionDep,
    caller: Enroller,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Enrol a registry person (for a household programme: their family card) if the rule in
    force admits them; a refusal is a 422 `not-eligible` naming the clauses that failed. Emits
    `programs.enrolment.created.v1`."""
    if (replay := await idempotency.begin(session, caller, enrolment_in)) is not None:
        return replay
    enrolment = await service.create_enrolment(session, enrolment_in=enrolment_in, caller=caller)
    return await idempotency.finish(
        session, EnrolmentRead.model_validate(enrolment), status_code=201
    )


@router.get(
    "/enrolments",
    response_model=EnrolmentPage,
    tags=["enrolments"],
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_enrolments(
    session: SessionDep,
    caller: Reader,
    programme: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    status: EnrolmentStatus | None = None,
    region: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$",
            description="Region code prefix",
        ),
    ] = None,
    person_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None,
    after: Annotated[uuid.UUID | None, Query(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EnrolmentPage:
    """Enrolments inside your regions matching every filter, a keyset page at a time. Is this
    person enrolled in X: `?person_id=...&programme=X&status=active`; `household_id` gives the
    card's own enrolments and its members'."""
    filters = EnrolmentFilter(
        programme=programme,
        status=status,
        region=region,
        person_id=person_id,
        household_id=household_id,
        after=after,
        limit=limit,
    )
    items, next_cursor = await service.list_enrolments(session, caller=caller, filters=filters)
    return EnrolmentPage(
        items=[EnrolmentRead.model_validate(e) for e in items], next_cursor=next_cursor
    )


@router.get(
    "/enrolments/{enrolment_id}",
    response_model=EnrolmentRead,
    tags=["enrolments"],
    responses=problem_responses(Unauthorized, Forbidden, EnrolmentNotFound),
)
async def read_enrolment(
    enrolment_id: uuid.UUID, session: SessionDep, caller: Reader
) -> EnrolmentRead:
    """Read one enrolment."""
    enrolment = await service.read_enrolment(session, enrolment_id=enrolment_id, caller=caller)
    return EnrolmentRead.model_validate(enrolment)


@router.get(
    "/enrolments/{enrolment_id}/history",
    response_model=EnrolmentHistory,
    tags=["enrolments"],
    responses=problem_responses(Unauthorized, Forbidden, EnrolmentNotFound),
)
async def read_enrolment_history(
    enrolment_id: uuid.UUID, session: SessionDep, caller: Reader
) -> EnrolmentHistory:
    """Every status change of the enrolment, oldest first, with reason, actor and time."""
    transitions = await service.read_enrolment_history(
        session, enrolment_id=enrolment_id, caller=caller
    )
    return EnrolmentHistory(
        enrolment_id=enrolment_id,
        transitions=[EnrolmentTransitionRead.model_validate(t) for t in transitions],
    )
