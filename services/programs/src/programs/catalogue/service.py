"""Catalogue use cases: programmes, their rule versions, and eligibility decisions.

A rule change is a new version (the programme points at the one in force); an old version is
never rewritten, so a decision records the version it was made under and stays explicable.
A decision reads only programs' read model of the registry (:mod:`programs.facts`): the same
rule explains one person (:func:`decide`) and selects a whole region in one statement
(:func:`eligible_people`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from programs.catalogue import rules
from programs.catalogue.schemas import (
    Benefit,
    Decision,
    EligiblePage,
    Explanation,
    ProgrammeCreate,
    ProgrammeRead,
    RuleHistory,
    RuleVersionCreate,
    RuleVersionRead,
)
from programs.errors import InvalidRule, PersonFactNotFound, ProgrammeExists, ProgrammeNotFound
from programs.facts.service import PersonFacts, load_person_facts
from programs.models import (
    EligibilityRule,
    HouseholdFact,
    PersonFact,
    Programme,
    audit_log,
    in_callers_regions,
)
from shared.audit import record_read
from shared.auth import Caller

__all__ = [
    "create_programme",
    "decide",
    "decision_of",
    "eligible_people",
    "list_programmes",
    "new_rule_version",
    "programme_in_force",
    "read_programme",
    "read_rule_history",
    "rule_facts",
    "today",
]

_WIB = timezone(timedelta(hours=7))


def today() -> date:
    """The decision day in Indonesia's westernmost time zone (WIB), where most offices are."""
    return datetime.now(_WIB).date()


def _parsed(rule: object, *, field: str = "rule") -> rules.Rule:
    try:
        return rules.parse_rule(rule)
    except rules.RuleError as exc:
        where = f"{field}.{exc.where}" if exc.where else field
        # Shaped like a validation 422: a client reads every refusal's `errors` the same way.
        field_name = f"body.{where}"
        raise InvalidRule(
            f"{field_name}: {exc.message}",
            errors=[{"field": field_name, "message": exc.message, "type": "invalid_rule"}],
        ) from exc


def _version_read(row: EligibilityRule) -> RuleVersionRead:
    return RuleVersionRead(
        version=row.version,
        rule=row.rule,
        text=rules.describe(rules.parse_rule(row.rule)),
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _programme_read(programme: Programme, rule: EligibilityRule) -> ProgrammeRead:
    return ProgrammeRead(
        code=programme.code,
        name=programme.name,
        agency=programme.agency,
        unit=programme.unit,
        benefit=Benefit(
            kind=programme.benefit_kind,
            amount=programme.benefit_amount,
            period=programme.benefit_period,
            description=programme.benefit_description,
        ),
        source=programme.source,
        rule=_version_read(rule),
    )


_IN_FORCE = and_(
    EligibilityRule.programme == Programme.code,
    EligibilityRule.version == Programme.rule_version,
)


async def list_programmes(session: AsyncSession) -> list[ProgrammeRead]:
    rows = await session.execute(
        select(Programme, EligibilityRule).join(EligibilityRule, _IN_FORCE).order_by(Programme.code)
    )
    return [_programme_read(programme, rule) for programme, rule in rows]


async def programme_in_force(
    session: AsyncSession, code: str, *, lock: bool = False
) -> tuple[Programme, EligibilityRule]:
    """The programme and its rule in force; ``lock`` holds the programme row until the
    transaction ends (rule changes queue on it)."""
    # The programme alone first: a join locked with it would, after waiting for a concurrent
    # rule change, re-check the join against the new rule_version and find no row at all.
    programme = await session.get(Programme, code, with_for_update=lock, populate_existing=lock)
    if programme is None:
        raise ProgrammeNotFound(f"no programme has the code {code}")
    rule = await session.get(EligibilityRule, (code, programme.rule_version))
    if rule is None:
        raise AssertionError(f"programme {code} points at a missing rule version")
    return programme, rule


async def read_programme(session: AsyncSession, *, code: str) -> ProgrammeRead:
    return _programme_read(*await programme_in_force(session, code))


async def create_programme(
    session: AsyncSession, *, programme_in: ProgrammeCreate, caller: Caller
) -> ProgrammeRead:
    """A new programme with its first rule (version 1)."""
    _parsed(programme_in.rule)
    programme = Programme(
        code=programme_in.code,
        name=programme_in.name,
        agency=programme_in.agency,
        unit=programme_in.unit,
        benefit_kind=programme_in.benefit.kind,
        benefit_amount=programme_in.benefit.amount,
        benefit_period=programme_in.benefit.period,
        benefit_description=programme_in.benefit.description,
        source=programme_in.source,
        rule_version=1,
    )
    rule = EligibilityRule(
        programme=programme_in.code,
        version=1,
        rule=programme_in.rule,
        note="first rule",
        created_by=caller.agency,
    )
    if await session.get(Programme, programme_in.code) is not None:
        raise ProgrammeExists(f"a programme {programme_in.code} exists already")
    try:
        async with session.begin_nested():
            session.add(programme)
            await session.flush()  # the programme before the rule that refers to it
    except IntegrityError as exc:  # a concurrent request took the code first
        raise ProgrammeExists(f"a programme {programme_in.code} exists already") from exc
    session.add(rule)
    await session.flush()
    await session.refresh(rule)
    return _programme_read(programme, rule)


async def new_rule_version(
    session: AsyncSession, *, code: str, rule_in: RuleVersionCreate, caller: Caller
) -> RuleVersionRead:
    """The programme's next rule version, in force from now; earlier decisions keep theirs."""
    _parsed(rule_in.rule)
    programme, current = await programme_in_force(session, code, lock=True)
    rule = EligibilityRule(
        programme=code,
        version=current.version + 1,
        rule=rule_in.rule,
        note=rule_in.note,
        created_by=caller.agency,
    )
    session.add(rule)
    programme.rule_version = rule.version
    await session.flush()
    await session.refresh(rule)
    return _version_read(rule)


async def read_rule_history(session: AsyncSession, *, code: str) -> RuleHistory:
    await programme_in_force(session, code)
    rows = await session.scalars(
        select(EligibilityRule)
        .where(EligibilityRule.programme == code)
        .order_by(EligibilityRule.version)
    )
    return RuleHistory(programme=code, versions=[_version_read(row) for row in rows])


# --- decisions ----------------------------------------------------------------------------


def rule_facts(loaded: PersonFacts) -> dict[str, Any]:
    """The facts a rule may name, for one person and their family card, on the day
    ``loaded`` was read for (a card programs has no fact of leaves every household fact
    unknown)."""
    person, household = loaded.person, loaded.household
    facts: dict[str, Any] = {
        "person.status": person.status,
        "person.age": loaded.age,
        "person.sex": person.sex,
        "person.disability": person.disability,
        "person.relationship": person.relationship,
        "person.region": person.village_code,
    }
    if household is not None:
        facts |= {
            "household.decile": household.decile,
            "household.house_fit": household.house_fit,
            "household.members": loaded.living_members,
            **{f"household.{name}": getattr(household, name) for name in rules.HOUSING},
        }
    return facts


def _explanation(explained: rules.Explanation) -> Explanation:
    return Explanation(
        rule=explained.rule,
        passed=explained.passed,
        fact=explained.fact,
        value=explained.value,
        parts=[_explanation(part) for part in explained.parts],
    )


def decision_of(programme: Programme, rule: EligibilityRule, loaded: PersonFacts) -> Decision:
    """The decision ``rule`` makes about the person of ``loaded`` (and their card) on the day
    ``loaded`` was read for, clause by clause."""
    explained = rules.explain(rules.parse_rule(rule.rule), rule_facts(loaded))
    return Decision(
        programme=programme.code,
        person_id=loaded.person.person_id,
        household_id=loaded.person.household_id,
        on=loaded.on,
        eligible=explained.passed,
        rule_version=rule.version,
        failed=[clause.rule for clause in explained.failed_clauses()],
        explanation=_explanation(explained),
    )


async def decide(
    session: AsyncSession,
    *,
    code: str,
    person_id: uuid.UUID,
    on: date | None,
    caller: Caller,
    purpose: str,
) -> Decision:
    """Whether ``person_id`` (for a household programme: their card) meets the rule in force,
    clause by clause; reading the person's facts is audited."""
    programme, rule_row = await programme_in_force(session, code)
    loaded = await load_person_facts(session, person_id, on=on or today())
    if loaded is None or not caller.may_see(loaded.person.village_code):
        raise PersonFactNotFound()
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        resource_type="person_fact",
        resource_ids=[str(person_id)],
        action="decide",
    )
    return decision_of(programme, rule_row, loaded)


async def eligible_people(
    session: AsyncSession,
    *,
    code: str,
    region: str | None,
    after: uuid.UUID | None,
    limit: int,
    on: date | None,
    caller: Caller,
    purpose: str,
) -> EligiblePage:
    """One keyset page of the people the rule in force selects, inside the caller's regions
    (and ``region``), in one statement. For a household programme: the living heads of the
    cards it selects. Every returned id is audited."""
    programme, rule_row = await programme_in_force(session, code)
    day = on or today()
    person = PersonFact.__table__.alias("p")
    household = HouseholdFact.__table__.alias("h")
    condition = rules.compile_rule(
        rules.parse_rule(rule_row.rule), person=person, household=household, on=day
    )
    statement = (
        select(person.c.person_id)
        .select_from(person.outerjoin(household, household.c.household_id == person.c.household_id))
        .where(condition)
        .order_by(person.c.person_id)
        .limit(limit + 1)
    )
    if programme.unit == "household":
        statement = statement.where(person.c.relationship == "head", household.c.status == "active")
    statement = statement.where(in_callers_regions(person.c.village_code, caller))
    if region:
        statement = statement.where(person.c.village_code.startswith(region))
    if after is not None:
        statement = statement.where(person.c.person_id > after)
    ids = list(await session.scalars(statement))
    page = ids[:limit]
    await record_read(
        session,
        audit_log,
        caller=caller,
        purpose=purpose,
        resource_type="person_fact",
        resource_ids=[str(i) for i in page],
        action="select_eligible",
    )
    return EligiblePage(
        programme=code,
        rule_version=rule_row.version,
        on=day,
        person_ids=page,
        next_cursor=page[-1] if len(ids) > limit else None,
    )
