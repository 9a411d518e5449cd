"""Kemendagri region codes, read-only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from registry import service
from registry.api.dependencies import Reader
from registry.errors import RegionNotFound
from registry.schemas import RegionRead
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["regions"])


@router.get(
    "/regions/{code}",
    response_model=RegionRead,
    responses=problem_responses(Unauthorized, Forbidden, RegionNotFound),
)
async def read_region(
    code: Annotated[str, Path(pattern=r"^[0-9]{2,10}$", examples=["1771011001"])],
    session: SessionDep,
    caller: Reader,
) -> RegionRead:
    """Look up a Kemendagri region code (province, regency, district or village)."""
    return RegionRead.model_validate(await service.get_region(session, code=code))
