"""Complaints REST API: thin endpoints over :mod:`complaints.complaint.service`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from complaints.complaint import service
from complaints.complaint.schemas import ComplaintCreate, ComplaintRead
from complaints.errors import ComplaintNotFound, OutsideRegion
from shared.audit import Purpose
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep

router = APIRouter(prefix="/v1")

Reader = Annotated[Caller, Depends(require_scope("complaints:read"))]
Writer = Annotated[Caller, Depends(require_scope("complaints:write"))]


@router.post(
    "/complaints",
    status_code=201,
    response_model=ComplaintRead,
    tags=["complaints"],
    responses=problem_responses(
        Unauthorized, Forbidden, OutsideRegion, IdempotencyKeyConflict, IdempotencyKeyInFlight
    ),
)
async def file_complaint(
    complaint_in: ComplaintCreate, session: SessionDep, caller: Writer, idempotency: IdempotencyDep
) -> JSONResponse:
    """File a complaint from any channel; emits `complaints.complaint.filed.v1`."""
    if (replay := await idempotency.begin(session, caller, complaint_in)) is not None:
        return replay
    complaint = await service.file_complaint(session, complaint_in=complaint_in, caller=caller)
    return await idempotency.finish(
        session, ComplaintRead.model_validate(complaint), status_code=201
    )


@router.get(
    "/complaints/{complaint_id}",
    response_model=ComplaintRead,
    tags=["complaints"],
    responses=problem_responses(Unauthorized, Forbidden, ComplaintNotFound),
)
async def read_complaint(
    complaint_id: uuid.UUID,
    session: SessionDep,
    caller: Reader,
    purpose: Purpose,
) -> ComplaintRead:
    """Read one complaint (audited with your purpose)."""
    complaint = await service.read_complaint(
        session, complaint_id=complaint_id, caller=caller, purpose=purpose
    )
    return ComplaintRead.model_validate(complaint)
