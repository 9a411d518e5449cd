"""Referrals REST API: thin endpoints over :mod:`referrals.referral.service`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from referrals.errors import InvalidDueDate, OutsideRegion, ReferralNotFound
from referrals.referral import service
from referrals.referral.schemas import ReferralCreate, ReferralRead
from shared.audit import Purpose
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1")

Reader = Annotated[Caller, Depends(require_scope("referrals:read"))]
Writer = Annotated[Caller, Depends(require_scope("referrals:write"))]


@router.post(
    "/referrals",
    status_code=201,
    response_model=ReferralRead,
    tags=["referrals"],
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        OutsideRegion,
        InvalidDueDate,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def create_referral(
    referral_in: ReferralCreate, session: SessionDep, caller: Writer, idempotency: IdempotencyDep
) -> JSONResponse:
    """Refer a registry person to an agency's service; emits `referrals.referral.created.v1`."""
    if (replay := await idempotency.begin(session, caller, referral_in)) is not None:
        return replay
    referral = await service.create_referral(session, referral_in=referral_in, caller=caller)
    return await idempotency.finish(session, ReferralRead.model_validate(referral), status_code=201)


@router.get(
    "/referrals/{referral_id}",
    response_model=ReferralRead,
    tags=["referrals"],
    responses=problem_responses(Unauthorized, Forbidden, ReferralNotFound),
)
async def read_referral(
    referral_id: uuid.UUID,
    session: SessionDep,
    caller: Reader,
    purpose: Purpose,
) -> ReferralRead:
    """Read one referral (audited with your purpose)."""
    referral = await service.read_referral(
        session, referral_id=referral_id, caller=caller, purpose=purpose
    )
    return ReferralRead.model_validate(referral)
