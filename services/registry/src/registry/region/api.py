"""Kemendagri region codes, read-only: provinces, the children of any code, one code."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from registry.dependencies import Reader
from registry.errors import RegionNotFound
from registry.region import service
from registry.region.schemas import RegionRead
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["regions"])

RegionCode = Annotated[
    str,
    Path(
        pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$",
        description="A province (2 digits), regency/city (4), district (6) or village (10) code",
        examples=["1771"],
    ),
]


class RegionList(BaseModel):
    items: list[RegionRead]


class RegionPage(BaseModel):
    """One page of regions in code order; pass ``next_after`` as ``after`` for the next one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "code": "177101",
                            "level": 3,
                            "parent_code": "1771",
                            "name": "Selebar",
                        }
                    ],
                    "next_after": "177101",
                }
            ]
        }
    )

    items: list[RegionRead]
    next_after: str | None = Field(
        description="Cursor of the next page; null on the last page", examples=["177101"]
    )


@router.get(
    "/regions/provinces",
    response_model=RegionList,
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_provinces(session: SessionDep, caller: Reader) -> RegionList:
    """The 38 provinces, in code order."""
    provinces = await service.list_provinces(session)
    return RegionList(items=[RegionRead.model_validate(p) for p in provinces])


@router.get(
    "/regions/{code}/children",
    response_model=RegionPage,
    responses=problem_responses(Unauthorized, Forbidden, RegionNotFound),
)
async def list_children(
    code: RegionCode,
    session: SessionDep,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size")] = 100,
    after: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{2,10}$",
            description="Return the children whose code comes after this one (keyset cursor)",
            examples=["177101"],
        ),
    ] = None,
) -> RegionPage:
    """Regencies of a province, districts of a regency, villages of a district (keyset pages)."""
    parent = await service.read_region(session, code=code)
    items, next_after = await service.list_children(
        session, parent=parent, limit=limit, after=after
    )
    return RegionPage(
        items=[RegionRead.model_validate(item) for item in items], next_after=next_after
    )


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
    return RegionRead.model_validate(await service.read_region(session, code=code))
