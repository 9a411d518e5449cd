"""People: registration, reads, changes (update, death, move) and version history."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from registry.dependencies import AsOf, AuditedReadSession, Reader, Writer, json_response
from registry.errors import (
    HouseholdAlreadyHasHead,
    HouseholdDissolved,
    InvalidChange,
    InvalidNik,
    NikAlreadyRegistered,
    OutsideRegion,
    PersonDeceased,
    PersonNotFound,
    UnknownHousehold,
    UnknownRegion,
)
from registry.lookup import service as lookups
from registry.person import service
from registry.person.schemas import (
    PersonCreate,
    PersonDeath,
    PersonHistory,
    PersonMove,
    PersonRecord,
    PersonUpdate,
)
from registry.projection import PersonView
from shared.audit import Purpose
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["persons"])


@router.post(
    "/persons",
    status_code=201,
    response_model=PersonRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        InvalidNik,
        UnknownRegion,
        UnknownHousehold,
        InvalidChange,
        NikAlreadyRegistered,
        HouseholdAlreadyHasHead,
        HouseholdDissolved,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def register_person(
    person_in: PersonCreate, session: SessionDep, caller: Writer, idempotency: IdempotencyDep
) -> JSONResponse:
    """Register a person, optionally on a family card; emits `registry.person.registered.v1`."""
    if (replay := await idempotency.begin(session, caller, person_in)) is not None:
        return replay
    person = await service.register_person(session, person_in=person_in, caller=caller)
    return await idempotency.finish(session, PersonRecord.model_validate(person), status_code=201)


@router.get(
    "/persons/{person_id}",
    response_model=PersonView,
    responses=problem_responses(Unauthorized, Forbidden, PersonNotFound),
)
async def read_person(
    person_id: uuid.UUID, purpose: Purpose, session: AuditedReadSession, caller: Reader
) -> Response:
    """Read one person, with the fields your scopes reveal (audited with your purpose)."""
    person = await lookups.read_person(session, person_id=person_id, caller=caller, purpose=purpose)
    return json_response(person)


@router.patch(
    "/persons/{person_id}",
    response_model=PersonRecord,
    responses=problem_responses(
        Unauthorized, Forbidden, PersonNotFound, InvalidChange, HouseholdAlreadyHasHead
    ),
)
async def update_person(
    person_id: uuid.UUID, person_in: PersonUpdate, session: SessionDep, caller: Writer
) -> PersonRecord:
    """Change name, relationship, disability, education or occupation; emits
    `registry.person.updated.v1` naming what changed (nothing changed: no event, same version)."""
    person = await service.update_person(
        session, person_id=person_id, changes=person_in.changes(), caller=caller
    )
    return PersonRecord.model_validate(person)


@router.post(
    "/persons/{person_id}/death",
    response_model=PersonRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        PersonNotFound,
        InvalidChange,
        PersonDeceased,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def record_death(
    person_id: uuid.UUID,
    death: PersonDeath,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Record a death (status `deceased`); emits `registry.person.died.v1`. Twice: 409."""
    if (replay := await idempotency.begin(session, caller, death)) is not None:
        return replay
    person = await service.record_death(session, person_id=person_id, death=death, caller=caller)
    return await idempotency.finish(session, PersonRecord.model_validate(person), status_code=200)


@router.post(
    "/persons/{person_id}/move",
    response_model=PersonRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        PersonNotFound,
        UnknownRegion,
        UnknownHousehold,
        InvalidChange,
        PersonDeceased,
        HouseholdAlreadyHasHead,
        HouseholdDissolved,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def move_person(
    person_id: uuid.UUID,
    move: PersonMove,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Move to another village and/or family card; emits `registry.person.moved.v1`.

    Your regions must cover both the old place (else 404) and the new one (else 403).
    """
    if (replay := await idempotency.begin(session, caller, move)) is not None:
        return replay
    person = await service.move_person(session, person_id=person_id, move=move, caller=caller)
    return await idempotency.finish(session, PersonRecord.model_validate(person), status_code=200)


@router.get(
    "/persons/{person_id}/versions",
    response_model=PersonHistory,
    responses=problem_responses(Unauthorized, Forbidden, PersonNotFound),
)
async def read_person_versions(
    person_id: uuid.UUID,
    purpose: Purpose,
    session: AuditedReadSession,
    caller: Reader,
    as_of: AsOf = None,
) -> PersonHistory:
    """Every version of a person, or the one valid at `as_of`, projected by your scopes
    (audited with your purpose)."""
    versions = await service.read_person_versions(
        session, person_id=person_id, caller=caller, purpose=purpose, as_of=as_of
    )
    return PersonHistory(person_id=person_id, as_of=as_of, versions=versions)
