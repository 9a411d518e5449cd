"""The eligibility rule language: what it accepts, how it explains a decision, and that its SQL
reading selects exactly the people its Python reading accepts (generated rules and facts, on
the real read-model tables)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from programs.catalogue import rules
from programs.catalogue.rules import FACTS, RuleError, compile_rule, describe, explain, parse_rule
from programs.catalogue.seed import seed_rows
from programs.catalogue.service import rule_facts
from programs.facts.service import load_person_facts
from programs.models import HouseholdFact, PersonFact
from programs.settings import ProgramsSettings
from shared.testing import rolled_back_session

ON = date(2026, 12, 4)
SEKOLAH_RAKYAT = {
    "all": [
        {"fact": "person.status", "is": "alive"},
        {"fact": "person.age", "between": [6, 18]},
        {"fact": "household.decile", "at_most": 2},
    ]
}


class TestReading:
    @pytest.mark.parametrize(
        ("rule", "where", "says"),
        [
            ([], "", "a rule is an object"),
            ({"all": []}, "all", "a non-empty list"),
            ({"all": [{"fact": "person.wealth", "is": 1}]}, "all[0].fact", "unknown fact"),
            ({"fact": "person.sex", "at_most": 3}, "at_most", "takes is, is_not, one_of"),
            ({"fact": "household.decile", "at_most": "4"}, "at_most", "a whole number"),
            ({"fact": "household.decile", "at_most": 11}, "at_most", "between 1 and 10"),
            ({"fact": "person.age", "between": [18, 6]}, "between", "low 18 is above high 6"),
            ({"fact": "person.status", "is": "dead"}, "is", "alive, deceased, moved"),
            ({"fact": "person.region", "within": ["17x"]}, "within[0]", "region code prefix"),
            ({"fact": "person.age", "at_least": 1, "at_most": 9}, "", "one operator per clause"),
            ({"all": [{"fact": "person.age", "is": 1}], "any": []}, "", "stands alone"),
            ({"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}}}, "", ""),
        ],
    )
    def test_a_bad_rule_says_where_and_why(self, rule: Any, where: str, says: str) -> None:
        with pytest.raises(RuleError) as refused:
            parse_rule(rule)
        if says:
            assert refused.value.where == where
            assert says in refused.value.message
        else:
            assert "at most 8 levels" in refused.value.message

    def test_a_rule_has_at_most_fifty_clauses(self) -> None:
        parse_rule({"all": [{"fact": "person.age", "at_least": 1}] * 50})
        with pytest.raises(RuleError, match="at most 50 clauses"):
            parse_rule({"all": [{"fact": "person.age", "at_least": 1}] * 51})

    def test_every_seeded_rule_reads_and_round_trips(self) -> None:
        for programme in seed_rows():
            rule = parse_rule(programme["rule"])
            assert parse_rule(rule.to_json()) == rule

    def test_the_words_of_a_rule(self) -> None:
        assert describe(parse_rule(SEKOLAH_RAKYAT)) == (
            "all of (person.status is alive; person.age between 6 and 18; "
            "household.decile at most 2)"
        )


class TestExplaining:
    def test_a_dead_child_fails_on_the_status_clause_only(self) -> None:
        facts = {"person.status": "deceased", "person.age": 10, "household.decile": 1}
        decision = explain(parse_rule(SEKOLAH_RAKYAT), facts)
        assert not decision.passed
        assert [clause.rule for clause in decision.failed_clauses()] == ["person.status is alive"]
        assert [(part.fact, part.value, part.passed) for part in decision.parts] == [
            ("person.status", "deceased", False),
            ("person.age", 10, True),
            ("household.decile", 1, True),
        ]

    def test_an_unknown_fact_fails_its_clause_even_under_not(self) -> None:
        unranked = {"person.status": "alive", "person.age": 10}
        assert not explain(parse_rule(SEKOLAH_RAKYAT), unranked).passed
        rich = parse_rule({"not": {"fact": "household.decile", "at_least": 9}})
        assert explain(rich, unranked).passed  # unknown decile: "at least 9" fails, not holds

    def test_a_refusal_under_not_names_the_clause_that_held(self) -> None:
        rule = parse_rule({"not": {"fact": "person.region", "within": ["9171"]}})
        decision = explain(rule, {"person.region": "9171010001"})
        assert [c.rule for c in decision.failed_clauses()] == ["person.region within 9171"]

    @pytest.mark.parametrize(
        ("decile", "eligible"), [(1, True), (2, True), (3, False), (None, False)]
    )
    def test_decile_boundaries(self, decile: int | None, eligible: bool) -> None:
        facts = {"person.status": "alive", "person.age": 6, "household.decile": decile}
        assert explain(parse_rule(SEKOLAH_RAKYAT), facts).passed is eligible

    @pytest.mark.parametrize(("age", "eligible"), [(5, False), (6, True), (18, True), (19, False)])
    def test_age_boundaries(self, age: int, eligible: bool) -> None:
        facts = {"person.status": "alive", "person.age": age, "household.decile": 1}
        assert explain(parse_rule(SEKOLAH_RAKYAT), facts).passed is eligible


# --- the SQL reading agrees with the Python one ---------------------------------------------


def _values(fact: rules.Fact) -> st.SearchStrategy[Any]:
    if fact.kind == "bool":
        return st.booleans()
    if fact.kind == "number":
        return st.integers(min_value=fact.low or 0, max_value=fact.high or 100)
    if fact.kind == "region":
        return st.sampled_from(["17", "1771", "177101", "1771011001", "1701", "9171"])
    return st.sampled_from(fact.values)


@st.composite
def clauses(draw: st.DrawFn) -> dict[str, Any]:
    fact = FACTS[draw(st.sampled_from(sorted(FACTS)))]
    operator = draw(st.sampled_from(sorted(rules._OPERATORS_OF[fact.kind])))
    if operator == "between":
        low, high = sorted(draw(st.tuples(_values(fact), _values(fact))))
        return {"fact": fact.name, operator: [low, high]}
    if operator in ("one_of", "within"):
        return {"fact": fact.name, operator: draw(st.lists(_values(fact), min_size=1, max_size=3))}
    return {"fact": fact.name, operator: draw(_values(fact))}


generated_rules = st.recursive(
    clauses(),
    lambda children: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, children),
    ),
    max_leaves=6,
)


def _person_row(n: int) -> dict[str, Any]:
    """A varied, deterministic person: every status, sex, age band and place turns up."""
    return {
        "person_id": uuid.UUID(int=n + 1),
        "village_code": ["1771011001", "1771021003", "1701012001", "9171010001"][n % 4],
        "birth_date": ON - timedelta(days=365 * (n % 90) + 17 * n),
        "sex": "MF"[n % 2],
        "status": ["alive", "alive", "deceased", "moved"][n % 4],
        "relationship": ["head", "spouse", "child", "other"][(n // 2) % 4],
        "disability": ["none", "none", "physical", "mental"][(n // 3) % 4],
        # Every third person on no card, every seventh on a card programs has no fact of:
        # either way their household facts are unknown.
        "household_id": None
        if n % 3 == 2
        else uuid.UUID(int=2000)
        if n % 7 == 6
        else uuid.UUID(int=1000 + n % 5),
        "version": 1,
        "as_of": ON,
    }


def _household_row(k: int) -> dict[str, Any]:
    return {
        "household_id": uuid.UUID(int=1000 + k),
        "village_code": "1771011001",
        "decile": [1, 2, 4, 9, None][k],
        "status": "active",
        "house_fit": k % 2 == 0,
        "floor": ["earth", "cement", "wood", "ceramic", "other"][k],
        "wall": ["bamboo", "brick", "wood", "plaster", "other"][k],
        "roof": ["thatch", "zinc", "tile", "concrete", "other"][k],
        "water": ["unprotected", "piped", "rain", "bottled", "other"][k],
        "sanitation": ["none", "shared", "private", "none", "shared"][k],
        "electricity": ["none", "pln_450", "pln_900", "pln_over_900", "non_pln"][k],
        "version": 1,
        "as_of": ON,
    }


PEOPLE = [_person_row(n) for n in range(40)]


async def _load(session: AsyncSession) -> None:
    await session.execute(insert(HouseholdFact), [_household_row(k) for k in range(5)])
    await session.execute(insert(PersonFact), PEOPLE)


async def _python_selects(session: AsyncSession, rule: rules.Rule) -> set[uuid.UUID]:
    chosen = set()
    for row in PEOPLE:
        loaded = await load_person_facts(session, row["person_id"], on=ON)
        assert loaded is not None
        if explain(rule, rule_facts(loaded)).passed:
            chosen.add(row["person_id"])
    return chosen


async def _sql_selects(session: AsyncSession, rule: rules.Rule) -> set[uuid.UUID]:
    person = PersonFact.__table__.alias("p")
    household = HouseholdFact.__table__.alias("h")
    statement = (
        select(person.c.person_id)
        .select_from(person.outerjoin(household, household.c.household_id == person.c.household_id))
        .where(
            compile_rule(rule, person=person, household=household, on=ON),
            person.c.person_id.in_([row["person_id"] for row in PEOPLE]),
        )
    )
    return set(await session.scalars(statement))


@pytest.mark.parametrize("programme", [row["code"] for row in seed_rows()])
async def test_sql_and_python_agree_on_every_seeded_rule(
    programme: str, programs_settings: ProgramsSettings
) -> None:
    rule = parse_rule(next(row["rule"] for row in seed_rows() if row["code"] == programme))
    async with rolled_back_session(programs_settings.database_url) as session:
        await _load(session)
        python, sql = await _python_selects(session, rule), await _sql_selects(session, rule)
    assert python == sql
    assert python, f"the fixture people should include someone eligible for {programme}"


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=generated_rules)
async def test_sql_and_python_agree_on_generated_rules(
    data: dict[str, Any], programs_settings: ProgramsSettings
) -> None:
    rule = parse_rule(data)
    async with rolled_back_session(programs_settings.database_url) as session:
        await _load(session)
        assert await _python_selects(session, rule) == await _sql_selects(session, rule), describe(
            rule
        )
