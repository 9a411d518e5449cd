"""Households (family cards, KK): registration, changes, split, merge and version history.

Reads of a household for partner agencies are the projected lookups (``/v1/households/by-kk``);
these routes are the registry clerk's, so they answer with the whole record they changed.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from registry.changes import household_members
from registry.dependencies import AsOf, AuditedReadSession, Reader, Writer
from registry.errors import (
    HouseholdAlreadyHasHead,
    HouseholdDissolved,
    HouseholdNotFound,
    InvalidChange,
    InvalidKk,
    KkAlreadyRegistered,
    OutsideRegion,
    UnknownHousehold,
    UnknownRegion,
)
from registry.household import service
from registry.household.schemas import (
    HouseholdCreate,
    HouseholdHistory,
    HouseholdMember,
    HouseholdMergeRequest,
    HouseholdMoveRequest,
    HouseholdRecord,
    HouseholdSplitRequest,
    HouseholdSplitResult,
    HouseholdUpdate,
)
from registry.models import Household
from shared.audit import Purpose
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["households"])

IDEMPOTENCY = (IdempotencyKeyConflict, IdempotencyKeyInFlight)


async def _record(session: AsyncSession, household: Household) -> HouseholdRecord:
    members = await household_members(session, household.id)
    return HouseholdRecord.model_validate(household).model_copy(
        update={"members": [HouseholdMember.model_validate(p) for p in members]}
    )


@router.post(
    "/households",
    status_code=201,
    response_model=HouseholdRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        InvalidKk,
        UnknownRegion,
        KkAlreadyRegistered,
        *IDEMPOTENCY,
    ),
)
async def register_household(
    household_in: HouseholdCreate,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Register a family card (KK) in a village of your regions; emits
    `registry.household.registered.v1`. Members join with `POST /v1/persons` (`household_id`)."""
    if (replay := await idempotency.begin(session, caller, household_in)) is not None:
        return replay
    household = await service.register_household(session, household_in=household_in, caller=caller)
    return await idempotency.finish(session, await _record(session, household), status_code=201)


@router.patch(
    "/households/{household_id}",
    response_model=HouseholdRecord,
    responses=problem_responses(Unauthorized, Forbidden, HouseholdNotFound, HouseholdDissolved),
)
async def update_household(
    household_id: uuid.UUID, household_in: HouseholdUpdate, session: SessionDep, caller: Writer
) -> HouseholdRecord:
    """Change the address or housing conditions (`registry.household.updated.v1` with `changed`)
    and/or the decile (`registry.household.decile_changed.v1` with `previous_decile`); both at
    once emit both. Nothing changed: no event, same version."""
    household = await service.update_household(
        session, household_id=household_id, changes=household_in.changes(), caller=caller
    )
    return await _record(session, household)


@router.post(
    "/households/{household_id}/move",
    response_model=HouseholdRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        HouseholdNotFound,
        HouseholdDissolved,
        UnknownRegion,
        InvalidKk,
        KkAlreadyRegistered,
        *IDEMPOTENCY,
    ),
)
async def move_household(
    household_id: uuid.UUID,
    move: HouseholdMoveRequest,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """The whole family moves to another village (with a new KK number when Dukcapil issued one).

    Emits `registry.person.moved.v1` per living member, then `registry.household.updated.v1`
    (`changed`: `village_code`, `address`, `kk`) on the card. Members who had left or died keep
    their recorded village. To move one person, use `POST /v1/persons/{id}/move`.
    """
    if (replay := await idempotency.begin(session, caller, move)) is not None:
        return replay
    household = await service.move_household(
        session, household_id=household_id, move=move, caller=caller
    )
    return await idempotency.finish(session, await _record(session, household), status_code=200)


@router.post(
    "/households/{household_id}/split",
    status_code=201,
    response_model=HouseholdSplitResult,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        HouseholdNotFound,
        InvalidKk,
        UnknownRegion,
        InvalidChange,
        KkAlreadyRegistered,
        HouseholdAlreadyHasHead,
        HouseholdDissolved,
        *IDEMPOTENCY,
    ),
)
async def split_household(
    household_id: uuid.UUID,
    split: HouseholdSplitRequest,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Some living members leave for a new family card with its own KK and head.

    Emits `registry.household.registered.v1` (new card), `registry.person.moved.v1` per member
    who left, and `registry.household.split.v1` on this card.
    """
    if (replay := await idempotency.begin(session, caller, split)) is not None:
        return replay
    source, new = await service.split_household(
        session, household_id=household_id, split=split, caller=caller
    )
    result = HouseholdSplitResult(
        household=await _record(session, source), new_household=await _record(session, new)
    )
    return await idempotency.finish(session, result, status_code=201)


@router.post(
    "/households/{household_id}/merge",
    response_model=HouseholdRecord,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        HouseholdNotFound,
        UnknownHousehold,
        InvalidChange,
        HouseholdAlreadyHasHead,
        HouseholdDissolved,
        *IDEMPOTENCY,
    ),
)
async def merge_households(
    household_id: uuid.UUID,
    merge: HouseholdMergeRequest,
    session: SessionDep,
    caller: Writer,
    idempotency: IdempotencyDep,
) -> JSONResponse:
    """Another card's living members join this one and the other card is dissolved.

    Emits `registry.person.moved.v1` per member, `registry.household.updated.v1` (status
    `dissolved`) on the other card and `registry.household.merged.v1` on this one.
    """
    if (replay := await idempotency.begin(session, caller, merge)) is not None:
        return replay
    household = await service.merge_households(
        session, household_id=household_id, merge=merge, caller=caller
    )
    return await idempotency.finish(session, await _record(session, household), status_code=200)


@router.get(
    "/households/{household_id}/versions",
    response_model=HouseholdHistory,
    responses=problem_responses(Unauthorized, Forbidden, HouseholdNotFound),
)
async def read_household_versions(
    household_id: uuid.UUID,
    purpose: Purpose,
    session: AuditedReadSession,
    caller: Reader,
    as_of: AsOf = None,
) -> HouseholdHistory:
    """Every version of a family card, or the one valid at `as_of`, projected by your scopes
    (audited with your purpose)."""
    versions = await service.read_household_versions(
        session, household_id=household_id, caller=caller, purpose=purpose, as_of=as_of
    )
    return HouseholdHistory(household_id=household_id, as_of=as_of, versions=versions)
