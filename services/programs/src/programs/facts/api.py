"""Programs REST API: the registry facts programs works from (its read model)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from programs.dependencies import Reader
from programs.errors import HouseholdFactNotFound, PersonFactNotFound
from programs.facts import service
from programs.facts.schemas import HouseholdFactRead, PersonFactPage, PersonFactRead
from shared.audit import Purpose
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

router = APIRouter(prefix="/v1")


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
    return await service.read_person_fact(
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


@router.get(
    "/household-facts/{household_id}",
    response_model=HouseholdFactRead,
    tags=["read model"],
    responses=problem_responses(Unauthorized, Forbidden, HouseholdFactNotFound),
)
async def read_household_fact(
    household_id: uuid.UUID,
    session: SessionDep,
    caller: Reader,
    purpose: Purpose,
) -> HouseholdFactRead:
    """One registry household programs has received by events, with its living members."""
    return await service.read_household_fact(
        session, household_id=household_id, caller=caller, purpose=purpose
    )
