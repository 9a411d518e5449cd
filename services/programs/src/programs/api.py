"""Programs REST API (coordination): enrolments and the registry facts programs works from."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from programs import service
from programs.errors import AlreadyEnrolled, EnrolmentNotFound, PersonFactNotFound, PersonNotKnown
from programs.schemas import EnrolmentCreate, EnrolmentRead, PersonFactPage, PersonFactRead
from shared.audit import Purpose
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1")

Reader = Annotated[Caller, Depends(require_scope("programs:read"))]
Enroller = Annotated[Caller, Depends(require_scope("programs:enrol"))]


@router.post(
    "/enrolments",
    status_code=201,
    response_model=EnrolmentRead,
    tags=["enrolments"],
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        PersonNotKnown,
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
    """Enrol a registry person in a programme; emits `programs.enrolment.created.v1`."""
    if (replay := await idempotency.begin(session, caller, enrolment_in)) is not None:
        return replay
    enrolment = await service.create_enrolment(session, enrolment_in=enrolment_in, caller=caller)
    return await idempotency.finish(
        session, EnrolmentRead.model_validate(enrolment), status_code=201
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
    enrolment = await service.get_enrolment(session, enrolment_id=enrolment_id, caller=caller)
    return EnrolmentRead.model_validate(enrolment)


@router.get(
    "/person-facts/{person_id}",
    response_model=PersonFactRead,
    tags=["read model"],
    responses=problem_responses(Unauthorized, Forbidden, PersonFactNotFound),
)
async def read_person_fact(
    person_id: uuid.UUID,
    session: SessionDep,
    caller: Reader,
    purpose: Purpose,
) -> PersonFactRead:
    """One registry fact programs has received by events."""
    return await service.get_person_fact(
        session, person_id=person_id, caller=caller, purpose=purpose
    )


@router.get(
    "/person-facts",
    response_model=PersonFactPage,
    tags=["read model"],
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_person_facts(
    session: SessionDep,
    caller: Reader,
    purpose: Purpose,
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{2,10}$", description="Region code prefix")
    ] = None,
    after: Annotated[uuid.UUID | None, Query(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PersonFactPage:
    """Registry facts programs has received by events (read model), keyset-paginated."""
    items, next_cursor = await service.list_person_facts(
        session, caller=caller, purpose=purpose, region_prefix=region, after=after, limit=limit
    )
    return PersonFactPage(items=items, next_cursor=str(next_cursor) if next_cursor else None)
