"""People: registration and reads."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from registry import service
from registry.api.dependencies import Purpose, Reader, Writer
from registry.errors import (
    InvalidNik,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonNotFound,
    UnknownRegion,
)
from registry.schemas import PersonCreate, PersonRead
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["persons"])


@router.post(
    "/persons",
    status_code=201,
    response_model=PersonRead,
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
    responses=problem_responses(Unauthorized, Forbidden, PersonNotFound),
)
async def read_person(
    person_id: uuid.UUID, purpose: Purpose, session: SessionDep, caller: Reader
) -> PersonRead:
    """Read one person (audited with your purpose)."""
    person = await service.get_person(session, person_id=person_id, caller=caller, purpose=purpose)
    return PersonRead.model_validate(person)
