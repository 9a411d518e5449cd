"""The programme catalogue (the information function's list of what exists, for whom) and
eligibility decisions under each programme's rule in force."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from programs.catalogue import service
from programs.catalogue.schemas import (
    CODE_PATTERN,
    Decision,
    DecisionRequest,
    EligiblePage,
    ProgrammeCreate,
    ProgrammeList,
    ProgrammeRead,
    RuleHistory,
    RuleVersionCreate,
    RuleVersionRead,
)
from programs.dependencies import Administrator, Reader
from programs.errors import InvalidRule, PersonFactNotFound, ProgrammeExists, ProgrammeNotFound
from shared.audit import Purpose
from shared.errors import Forbidden, Unauthorized, problem_responses
from shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["catalogue"])

ProgrammePath = Annotated[str, Path(pattern=CODE_PATTERN, examples=["PKH"])]


@router.get(
    "/programmes",
    response_model=ProgrammeList,
    responses=problem_responses(Unauthorized, Forbidden),
)
async def list_programmes(session: SessionDep, _caller: Reader) -> ProgrammeList:
    """Every programme with its owning agency, unit, benefit and the rule in force."""
    return ProgrammeList(items=await service.list_programmes(session))


@router.post(
    "/programmes",
    status_code=201,
    response_model=ProgrammeRead,
    responses=problem_responses(Unauthorized, Forbidden, InvalidRule, ProgrammeExists),
)
async def create_programme(
    programme_in: ProgrammeCreate, session: SessionDep, caller: Administrator
) -> ProgrammeRead:
    """A new programme and its first eligibility rule (version 1)."""
    return await service.create_programme(session, programme_in=programme_in, caller=caller)


@router.get(
    "/programmes/{code}",
    response_model=ProgrammeRead,
    responses=problem_responses(Unauthorized, Forbidden, ProgrammeNotFound),
)
async def read_programme(
    code: ProgrammePath, session: SessionDep, _caller: Reader
) -> ProgrammeRead:
    return await service.read_programme(session, code=code)


@router.put(
    "/programmes/{code}/rule",
    response_model=RuleVersionRead,
    responses=problem_responses(Unauthorized, Forbidden, ProgrammeNotFound, InvalidRule),
)
async def new_rule_version(
    code: ProgrammePath, rule_in: RuleVersionCreate, session: SessionDep, caller: Administrator
) -> RuleVersionRead:
    """The next version of the programme's rule, in force from now; decisions already made keep
    the version they were made under."""
    return await service.new_rule_version(session, code=code, rule_in=rule_in, caller=caller)


@router.get(
    "/programmes/{code}/rules",
    response_model=RuleHistory,
    responses=problem_responses(Unauthorized, Forbidden, ProgrammeNotFound),
)
async def read_rule_history(
    code: ProgrammePath, session: SessionDep, _caller: Reader
) -> RuleHistory:
    """Every version of the programme's rule, oldest first."""
    return await service.read_rule_history(session, code=code)


@router.post(
    "/programmes/{code}/decisions",
    response_model=Decision,
    responses=problem_responses(Unauthorized, Forbidden, ProgrammeNotFound, PersonFactNotFound),
)
async def decide(
    code: ProgrammePath,
    request_in: DecisionRequest,
    purpose: Purpose,
    session: SessionDep,
    caller: Reader,
) -> Decision:
    """Would this person (for a household programme: their family card) be eligible? Each
    clause of the rule with the fact it read and whether it held; nothing is enrolled."""
    return await service.decide(
        session,
        code=code,
        person_id=request_in.person_id,
        on=request_in.on,
        caller=caller,
        purpose=purpose,
    )


@router.get(
    "/programmes/{code}/eligible",
    response_model=EligiblePage,
    responses=problem_responses(Unauthorized, Forbidden, ProgrammeNotFound),
)
async def eligible_people(
    code: ProgrammePath,
    purpose: Purpose,
    session: SessionDep,
    caller: Reader,
    region: Annotated[
        str | None, Query(pattern=r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$")
    ] = None,
    after: Annotated[uuid.UUID | None, Query(description="Cursor from the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    on: Annotated[date | None, Query(description="Decide as of this day; default today")] = None,
) -> EligiblePage:
    """The people the rule in force selects inside your regions (household programmes: the
    heads of the selected cards), in person-id order: one SQL statement per page."""
    return await service.eligible_people(
        session,
        code=code,
        region=region,
        after=after,
        limit=limit,
        on=on,
        caller=caller,
        purpose=purpose,
    )
