"""Lookups for partner agencies: by NIK, by KK, a batch of NIKs, and search.

Every answer is projected by the caller's scopes (:mod:`registry.projection`), kept to its
regions, and audited with the stated purpose. The handlers return orjson bytes directly: the
lookups already produce exactly the documented shape, so ``response_model`` is kept for OpenAPI
only and nothing is validated twice on the hot path.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from registry.dependencies import AuditedReadSession, Reader, json_response
from registry.errors import HouseholdNotFound, PersonNotFound
from registry.fields import KkNumber, NikNumber
from registry.lookup import service as lookups
from registry.lookup.schemas import (
    PersonLookupRequest,
    PersonLookupResponse,
    PersonPage,
    PersonSearch,
)
from registry.projection import HouseholdView, PersonView
from shared.audit import Purpose
from shared.errors import Forbidden, Unauthorized, problem_responses

router = APIRouter(prefix="/v1", tags=["lookups"])

REGION_PATTERN = r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$"


@router.get(
    "/persons/by-nik/{nik}",
    response_model=PersonView,
    responses=problem_responses(Unauthorized, Forbidden, PersonNotFound),
)
async def read_person_by_nik(
    nik: Annotated[NikNumber, Path(examples=["1771014509900001"])],
    purpose: Purpose,
    session: AuditedReadSession,
    caller: Reader,
) -> Response:
    """One person by NIK, with the fields your scopes reveal (audited with your purpose)."""
    person = await lookups.read_person_by_nik(session, nik=nik, caller=caller, purpose=purpose)
    return json_response(person)


@router.get(
    "/households/by-kk/{kk}",
    response_model=HouseholdView,
    responses=problem_responses(Unauthorized, Forbidden, HouseholdNotFound),
)
async def read_household_by_kk(
    kk: Annotated[KkNumber, Path(examples=["1771010101200001"])],
    purpose: Purpose,
    session: AuditedReadSession,
    caller: Reader,
) -> Response:
    """One family card (KK) with the members you may see (audited with your purpose)."""
    household = await lookups.read_household_by_kk(session, kk=kk, caller=caller, purpose=purpose)
    return json_response(household)


@router.post(
    "/persons/lookup",
    response_model=PersonLookupResponse,
    responses=problem_responses(Unauthorized, Forbidden),
)
async def lookup_persons(
    lookup_in: PersonLookupRequest, session: AuditedReadSession, caller: Reader
) -> Response:
    """Verify up to 1,000 NIKs in one call: `found` or `not_found` for each distinct NIK."""
    answer = await lookups.lookup_persons(
        session, niks=lookup_in.niks, caller=caller, purpose=lookup_in.purpose
    )
    return json_response(answer)


@router.get(
    "/persons",
    response_model=PersonPage,
    responses=problem_responses(Unauthorized, Forbidden),
)
async def search_persons(
    purpose: Purpose,
    session: AuditedReadSession,
    caller: Reader,
    region: Annotated[
        str | None,
        Query(
            pattern=REGION_PATTERN,
            description="Region code prefix: province, regency, district or village",
            examples=["1771"],
        ),
    ] = None,
    decile_min: Annotated[
        int | None, Query(ge=1, le=10, description="Needs `registry:read:socioeconomic`")
    ] = None,
    decile_max: Annotated[
        int | None, Query(ge=1, le=10, description="Needs `registry:read:socioeconomic`")
    ] = None,
    status: Literal["alive", "deceased", "moved"] | None = None,
    name: Annotated[
        str | None,
        Query(
            min_length=3,
            max_length=200,
            description="Typo-tolerant (trigram) name match; needs `registry:read:identity`",
            examples=["Siti Aminah"],
        ),
    ] = None,
    after: Annotated[
        uuid.UUID | None, Query(description="`next_cursor` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    """Search people in your regions, paginated by `next_cursor` (every result is audited)."""
    search = PersonSearch(
        region=region,
        decile_min=decile_min,
        decile_max=decile_max,
        status=status,
        name=name,
        after=after,
        limit=limit,
    )
    page = await lookups.search_persons(session, search=search, caller=caller, purpose=purpose)
    return json_response(page)
