"""Eligibility rules as data: a small predicate tree that explains one decision and compiles to
SQL for a whole region.

A rule is JSON a programme officer can read::

    {"all": [
        {"fact": "person.status", "is": "alive"},
        {"fact": "household.decile", "at_most": 4},
        {"any": [{"fact": "person.age", "between": [0, 6]},
                 {"fact": "person.disability", "is_not": "none"}]},
        {"not": {"fact": "person.region", "within": ["9171"]}}
    ]}

``all`` / ``any`` take a list, ``not`` one rule; a clause names one fact and one operator:
``is``, ``is_not``, ``at_least``, ``at_most``, ``between`` ``[low, high]`` (both included),
``one_of`` a list, ``within`` region-code prefixes. The facts are what programs' read model
knows from registry events (:data:`FACTS`); ``person.age`` is counted in whole years on the day
of the decision.

One tree, two readings, the same verdict:

* :func:`explain` evaluates it over one person's facts and says, clause by clause, which fact
  it read, the value, and whether it held (what an applicant is told);
* :func:`compile_rule` turns it into one SQL condition over ``person_fact`` and
  ``household_fact``, so "who in 1771 is eligible" is one set-based statement.

An unknown fact (a household without a decile yet, a person on no family card) makes its
clause *fail*, never pass, in both readings: SQL's three-valued logic is closed with
``coalesce(..., false)`` at every clause, so ``not`` of an unknown is true in SQL exactly when it
is in Python. Tests hold the two readings equal on generated rules and facts.

This is the JSON-predicate choice of the issue rather than CEL: CEL (OpenSPP's choice) needs a
CEL-to-SQL translator of its own to run set-based; a tree of a dozen node kinds is both the
parser and the compiler, and reads well enough to be the documentation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Date,
    FromClause,
    Integer,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import KeyedColumnElement

__all__ = [
    "FACTS",
    "HOUSING",
    "MAX_CLAUSES",
    "MAX_DEPTH",
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "Clause",
    "Explanation",
    "Fact",
    "NotOf",
    "Rule",
    "RuleError",
    "compile_rule",
    "describe",
    "explain",
    "parse_rule",
]

MAX_DEPTH = 8
MAX_CLAUSES = 50
Kind = Literal["number", "text", "bool", "region"]

# Which operators each kind of fact takes.
_OPERATORS_OF: dict[Kind, frozenset[str]] = {
    "number": frozenset({"is", "is_not", "at_least", "at_most", "between", "one_of"}),
    "text": frozenset({"is", "is_not", "one_of"}),
    "bool": frozenset({"is", "is_not"}),
    "region": frozenset({"within"}),
}
OPERATORS = frozenset().union(*_OPERATORS_OF.values())


class RuleError(ValueError):
    """A rule that cannot be read: ``where`` is its JSON path (e.g. ``all[2].between``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


# --- facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """One fact a rule may name: its kind, the values it takes, and where SQL finds it."""

    name: str
    kind: Kind
    description: str
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None


HOUSING = {
    "floor": ("earth", "bamboo", "wood", "cement", "ceramic", "other"),
    "wall": ("bamboo", "wood", "plaster", "brick", "other"),
    "roof": ("thatch", "zinc", "asbestos", "tile", "concrete", "other"),
    "water": ("unprotected", "protected_well", "rain", "piped", "bottled", "other"),
    "sanitation": ("none", "shared", "private"),
    "electricity": ("none", "non_pln", "pln_450", "pln_900", "pln_over_900"),
}

FACTS: dict[str, Fact] = {
    fact.name: fact
    for fact in (
        Fact("person.status", "text", "alive, deceased or moved", ("alive", "deceased", "moved")),
        Fact("person.age", "number", "whole years on the day of the decision", low=0, high=150),
        Fact("person.sex", "text", "M or F", ("M", "F")),
        Fact(
            "person.disability",
            "text",
            "none, or the kind of disability",
            ("none", "physical", "sensory", "intellectual", "mental", "multiple"),
        ),
        Fact(
            "person.relationship",
            "text",
            "relationship to the head of the household",
            (
                "head",
                "spouse",
                "child",
                "child_in_law",
                "grandchild",
                "parent",
                "in_law",
                "other",
            ),
        ),
        Fact("person.region", "region", "the person's village code"),
        Fact(
            "household.decile",
            "number",
            "DTSEN welfare decile, 1 = poorest tenth (unknown until BPS ranks the card)",
            low=1,
            high=10,
        ),
        Fact("household.house_fit", "bool", "false: an unfit house (rumah tidak layak huni)"),
        Fact(
            "household.members",
            "number",
            "living members on the family card",
            low=0,
            high=100,
        ),
        *(
            Fact(f"household.{name}", "text", f"the house's {name}", values)
            for name, values in HOUSING.items()
        ),
    )
}


# --- the tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    fact: str
    operator: str
    value: Any

    def to_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"fact": self.fact, self.operator: value}


@dataclass(frozen=True)
class AllOf:
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        return {"all": [rule.to_json() for rule in self.rules]}


@dataclass(frozen=True)
class AnyOf:
    rules: tuple[Rule, ...]

    def to_json(self) -> dict[str, Any]:
        return {"any": [rule.to_json() for rule in self.rules]}


@dataclass(frozen=True)
class NotOf:
    rule: Rule

    def to_json(self) -> dict[str, Any]:
        return {"not": self.rule.to_json()}


Rule = Clause | AllOf | AnyOf | NotOf


def parse_rule(data: object) -> Rule:
    """The rule ``data`` (parsed JSON) stands for, or a :class:`RuleError` naming where it is
    wrong. Bounded: at most :data:`MAX_DEPTH` levels and :data:`MAX_CLAUSES` clauses."""
    counter = [0]
    return _parse(data, "", 1, counter)


def _parse(data: object, where: str, depth: int, clauses: list[int]) -> Rule:
    if depth > MAX_DEPTH:
        raise RuleError(where, f"a rule may nest at most {MAX_DEPTH} levels")
    if not isinstance(data, dict):
        raise RuleError(where, "a rule is an object: {all}, {any}, {not} or {fact, <operator>}")
    keys = set(data)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                raise RuleError(where, f"{combinator} stands alone, found also {_others(keys)}")
            items = data[combinator]
            if not isinstance(items, list) or not items:
                raise RuleError(_at(where, combinator), "a non-empty list of rules")
            children = tuple(
                _parse(item, f"{_at(where, combinator)}[{i}]", depth + 1, clauses)
                for i, item in enumerate(items)
            )
            return AllOf(children) if combinator == "all" else AnyOf(children)
    if "not" in keys:
        if keys != {"not"}:
            raise RuleError(where, f"not stands alone, found also {_others(keys)}")
        return NotOf(_parse(data["not"], _at(where, "not"), depth + 1, clauses))
    if "fact" not in keys:
        raise RuleError(where, "a rule is {all}, {any}, {not} or {fact, <operator>}")
    clauses[0] += 1
    if clauses[0] > MAX_CLAUSES:
        raise RuleError(where, f"a rule may hold at most {MAX_CLAUSES} clauses")
    return _clause(data, where)


def _clause(data: dict[str, Any], where: str) -> Clause:
    name = data["fact"]
    fact = FACTS.get(name) if isinstance(name, str) else None
    if fact is None:
        raise RuleError(_at(where, "fact"), f"unknown fact {name!r}; facts: {', '.join(FACTS)}")
    operators = set(data) - {"fact"}
    if len(operators) != 1:
        raise RuleError(where, f"one operator per clause, found {sorted(operators) or 'none'}")
    (operator,) = operators
    allowed = _OPERATORS_OF[fact.kind]
    if operator not in allowed:
        raise RuleError(
            _at(where, operator),
            f"{fact.name} takes {', '.join(sorted(allowed))}, not {operator}",
        )
    return Clause(fact.name, operator, _value(fact, operator, data[operator], _at(where, operator)))


def _value(fact: Fact, operator: str, value: object, where: str) -> Any:
    if operator == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(where, "between takes [low, high]")
        low, high = (_scalar(fact, v, f"{where}[{i}]") for i, v in enumerate(value))
        if low > high:
            raise RuleError(where, f"low {low} is above high {high}")
        return (low, high)
    if operator in ("one_of", "within"):
        if not isinstance(value, list) or not value:
            raise RuleError(where, f"{operator} takes a non-empty list")
        return tuple(_scalar(fact, v, f"{where}[{i}]") for i, v in enumerate(value))
    return _scalar(fact, value, where)


def _scalar(fact: Fact, value: object, where: str) -> Any:
    if fact.kind == "bool":
        if not isinstance(value, bool):
            raise RuleError(where, f"{fact.name} is true or false")
        return value
    if fact.kind == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            raise RuleError(where, f"{fact.name} is a whole number")
        if (fact.low is not None and value < fact.low) or (
            fact.high is not None and value > fact.high
        ):
            raise RuleError(where, f"{fact.name} lies between {fact.low} and {fact.high}")
        return value
    if not isinstance(value, str):
        raise RuleError(where, f"{fact.name} is text")
    if fact.kind == "region":
        if not value.isdigit() or len(value) not in (2, 4, 6, 10):
            raise RuleError(where, "a region code prefix: 2, 4, 6 or 10 digits")
        return value
    if fact.values and value not in fact.values:
        raise RuleError(where, f"{fact.name} is one of {', '.join(fact.values)}, not {value!r}")
    return value


def _at(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _others(keys: set[str]) -> str:
    return ", ".join(sorted(keys - {"all", "any", "not"})) or "another combinator"


# --- reading one decision -----------------------------------------------------------------


def describe(rule: Rule) -> str:
    """The rule in one line of text, as a decision quotes it."""
    match rule:
        case Clause(fact, operator, value):
            shown = (
                f"{value[0]} and {value[1]}"
                if operator == "between"
                else ", ".join(map(str, value))
                if isinstance(value, tuple)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
            return f"{fact} {operator.replace('_', ' ')} {shown}"
        case AllOf(rules):
            return "all of (" + "; ".join(describe(r) for r in rules) + ")"
        case AnyOf(rules):
            return "any of (" + "; ".join(describe(r) for r in rules) + ")"
        case NotOf(inner):
            return f"not ({describe(inner)})"
    raise AssertionError(rule)


@dataclass(frozen=True)
class Explanation:
    """Why a rule held or not: for a clause the fact read and its value, for a combination
    the explanations of its parts."""

    passed: bool
    rule: str
    fact: str | None = None
    value: Any = None
    parts: tuple[Explanation, ...] = ()

    def failed_clauses(self) -> list[Explanation]:
        """The clauses that failed and decided the verdict (inside a ``not``, the ones that
        held)."""
        if self.passed:
            return []
        if self.fact is not None:
            return [self]
        if self.rule.startswith("not ("):
            return [held for part in self.parts for held in part.held_clauses()]
        return [failed for part in self.parts for failed in part.failed_clauses()]

    def held_clauses(self) -> list[Explanation]:
        if not self.passed:
            return []
        if self.fact is not None:
            return [self]
        return [held for part in self.parts for held in part.held_clauses()]

    def to_json(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"rule": self.rule, "passed": self.passed}
        if self.fact is not None:
            shown |= {"fact": self.fact, "value": self.value}
        if self.parts:
            shown["parts"] = [part.to_json() for part in self.parts]
        return shown


def explain(rule: Rule, facts: Mapping[str, Any]) -> Explanation:
    """Evaluate ``rule`` over one subject's ``facts`` (fact name -> value; a missing or None
    value is unknown, and a clause over an unknown fact fails)."""
    match rule:
        case Clause(fact, operator, value):
            known = facts.get(fact)
            return Explanation(
                passed=known is not None and _holds(operator, known, value),
                rule=describe(rule),
                fact=fact,
                value=known,
            )
        case AllOf(rules):
            parts = tuple(explain(r, facts) for r in rules)
            return Explanation(all(p.passed for p in parts), describe(rule), parts=parts)
        case AnyOf(rules):
            parts = tuple(explain(r, facts) for r in rules)
            return Explanation(any(p.passed for p in parts), describe(rule), parts=parts)
        case NotOf(inner):
            part = explain(inner, facts)
            return Explanation(not part.passed, describe(rule), parts=(part,))
    raise AssertionError(rule)


def _holds(operator: str, known: Any, value: Any) -> bool:
    match operator:
        case "is":
            return bool(known == value)
        case "is_not":
            return bool(known != value)
        case "at_least":
            return bool(known >= value)
        case "at_most":
            return bool(known <= value)
        case "between":
            return bool(value[0] <= known <= value[1])
        case "one_of":
            return known in value
        case "within":
            return any(str(known).startswith(prefix) for prefix in value)
    raise AssertionError(operator)


# --- running set-based --------------------------------------------------------------------

# A fact's column over the person (p) and household (h) read-model rows, on a decision date.
ColumnOf = Callable[[FromClause, FromClause, ColumnElement[Any]], ColumnElement[Any]]


def _age(p: FromClause, _h: FromClause, on: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(func.date_part("year", func.age(on, p.c.birth_date)), Integer)


def _members(p: FromClause, h: FromClause, _on: ColumnElement[Any]) -> ColumnElement[Any]:
    member = p.alias("member")
    count = (
        select(func.count())
        .select_from(member)
        .where(member.c.household_id == h.c.household_id, member.c.status == "alive")
        .scalar_subquery()
    )
    # Unknown without the card's fact, as every household fact is (not "no members").
    return case((h.c.household_id.is_(None), null()), else_=count)


def _person(column: str) -> ColumnOf:
    return lambda p, _h, _on: p.c[column]


def _household(column: str) -> ColumnOf:
    return lambda _p, h, _on: h.c[column]


_COLUMNS: dict[str, ColumnOf] = {
    "person.status": _person("status"),
    "person.age": _age,
    "person.sex": _person("sex"),
    "person.disability": _person("disability"),
    "person.relationship": _person("relationship"),
    "person.region": _person("village_code"),
    "household.decile": _household("decile"),
    "household.house_fit": _household("house_fit"),
    "household.members": _members,
    **{f"household.{name}": _household(name) for name in HOUSING},
}
assert _COLUMNS.keys() == FACTS.keys(), "every fact has its column"


def compile_rule(
    rule: Rule, *, person: FromClause, household: FromClause, on: date
) -> ColumnElement[bool]:
    """``rule`` as one SQL condition over ``person`` (person_fact) and ``household``
    (household_fact, outer-joined on the person's household: its columns are NULL when the
    person has no card), decided on ``on``."""
    decided_on = cast(literal(on), Date)
    return _compile(rule, person, household, decided_on)


def _compile(
    rule: Rule, p: FromClause, h: FromClause, on: ColumnElement[Any]
) -> ColumnElement[bool]:
    match rule:
        case Clause(fact, operator, value):
            column = _COLUMNS[fact](p, h, on)
            # Closed to true/false: an unknown fact fails its clause, also under `not`.
            return func.coalesce(_condition(operator, column, value), false())
        case AllOf(rules):
            return and_(true(), *(_compile(r, p, h, on) for r in rules))
        case AnyOf(rules):
            return or_(false(), *(_compile(r, p, h, on) for r in rules))
        case NotOf(inner):
            return not_(_compile(inner, p, h, on))
    raise AssertionError(rule)


def _condition(
    operator: str, column: ColumnElement[Any] | KeyedColumnElement[Any], value: Any
) -> ColumnElement[bool]:
    condition: ColumnElement[bool]
    match operator:
        case "is":
            condition = column == value
        case "is_not":
            condition = column != value
        case "at_least":
            condition = column >= value
        case "at_most":
            condition = column <= value
        case "between":
            condition = column.between(value[0], value[1])
        case "one_of":
            condition = column.in_(list(value))
        case "within":
            prefixes: Sequence[str] = value
            condition = or_(*(column.startswith(prefix, autoescape=True) for prefix in prefixes))
        case _:
            raise AssertionError(operator)
    return condition
