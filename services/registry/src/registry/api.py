"""Registry REST API: thin endpoints over :mod:`registry.service`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from registry import service
from registry.errors import (
    InvalidNik,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonNotFound,
    RegionNotFound,
    UnknownRegion,
)
from registry.schemas import PersonCreate, PersonRead, RegionRead
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1")

Reader = Annotated[Caller, Depends(require_scope("registry:read"))]
Writer = Annotated[Caller, Depends(require_scope("registry:write"))]
Purpose = Annotated[
    str,
    Query(
        min_length=3,
        max_length=200,
        description="Why you read this record; written to the audit log with your identity.",
        examples=["PBI-JK eligibility check"],
    ),
]


@router.post(
    "/persons",
    status_code=201,
    response_model=PersonRead,
    tags=["persons"],
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        InvalidNik,
        UnknownRegion,
        NikAlreadyRegistered,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def create_person(
    person_in: PersonCreate, session: SessionDep, caller: Writer, idempotency: IdempotencyDep
) -> JSONResponse:
    """Register a person in the DTSEN registry; emits `registry.person.registered.v1`."""
    if (replay := await idempotency.begin(session, caller, person_in)) is not None:
        return replay
    person = await service.create_person(session, person_in=person_in, caller=caller)
    return await idempotency.finish(session, PersonRead.model_validate(person), status_code=201)


@router.get(
    "/persons/{person_id}",
    response_model=PersonRead,
    tags=["persons"],
    responses=problem_responses(Unauthorized, Forbidden, PersonNotFound),
)
async def read_person(
    person_id: uuid.UUID, purpose: Purpose, session: SessionDep, caller: Reader
) -> PersonRead:
    """Read one person (audited with your purpose)."""
    person = await service.get_person(session, person_id=person_id, caller=caller, purpose=purpose)
    return PersonRead.model_validate(person)


@router.get(
    "/regions/{code}",
    response_model=RegionRead,
    tags=["regions"],
    responses=problem_responses(Unauthorized, Forbidden, RegionNotFound),
)
async def read_region(
    code: Annotated[str, Path(pattern=r"^[0-9]{2,10}$", examples=["1771011001"])],
    session: SessionDep,
    caller: Reader,
) -> RegionRead:
    """Look up a Kemendagri region code (province, regency, district or village)."""
    return RegionRead.model_validate(await service.get_region(session, code=code))
