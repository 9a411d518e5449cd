"""Statistics by region, decile and status: counts only, no personal data (no audit needed).

Region restriction: a regional caller (token ``regions`` claim) may ask for any region inside
its own, down to a village; a region that is wider than or outside its regions (a 1771 operator
asking for province 17, or for the whole country) is refused with 403 ``region-outside-scope``
rather than silently narrowed, so a number is never labelled with a region it does not cover.
Region codes are public reference data, so an unknown code is a 404 for everyone.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from registry.dependencies import Statistician
from registry.errors import NoLowerRegionLevel, RegionNotFound, RegionOutsideScope
from registry.statistics import service
from registry.statistics.schemas import Grouping, Statistics
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["statistics"])


@router.get(
    "/statistics",
    response_model=Statistics,
    responses=problem_responses(
        Unauthorized, Forbidden, RegionOutsideScope, RegionNotFound, NoLowerRegionLevel
    ),
)
async def read_statistics(
    session: SessionDep,
    caller: Statistician,
    region: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$",
            description="Region code prefix (province, regency, district or village); "
            "absent for the whole country (national callers only)",
            examples=["1771"],
        ),
    ] = None,
    by: Annotated[
        Grouping,
        Query(description="Group by decile (1-10, unranked), person status, or sub-region"),
    ] = "decile",
) -> Statistics:
    """Households and people of a region, grouped by decile, status or the next region level."""
    return await service.read_statistics(session, caller=caller, region=region, by=by)
