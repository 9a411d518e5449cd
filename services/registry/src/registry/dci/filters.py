"""SPDCI query filters: what a search item or a subscription asks for, parsed into a small filter
tree (:class:`Condition` / :class:`Combination`) and checked against the caller's scopes; a bad
query is an :class:`ItemRejected` with the spec's reason code.

Query shapes (recognised by shape, whatever ``query_type`` says, since the spec's own samples
mix them up):

* ``idtype-value``: ``{"type": "NIK", "value": "1771014509900001"}``. Types: ``NIK`` (also
  ``UIN``, ``NationalID``), ``KK`` (also ``FamilyCard``), ``PERSON_ID``, ``HOUSEHOLD_ID``. The
  spec's other examples (``BRN``, ``MRN``, ``DRN``, ``MOBILE``) are identifiers this registry
  does not hold: ``rjct.search_criteria.invalid``.
* ``predicate``: ``[{"seq_num": 1, "expression1": {"attribute_name", "operator",
  "attribute_value"}, "condition": "and|or|not", "expression2": {...}}, ...]``. Each entry is
  ``expression1`` alone, or ``expression1 <condition> expression2`` (``not``: ``expression1 AND
  NOT expression2``); the entries, in ``seq_num`` order, must all hold.
* ``expression``: ``{"type": "...", "value": {"expression": {"collection": "Group"|"Member",
  "query": {"$and": [{"poverty_score": {"$lt": 5}}, ...]}}}}``, MongoDB-style: ``$and $or $not
  $nor``, per attribute ``$eq $ne $lt $lte $gt $gte $in`` (a bare value means ``$eq``). GraphQL
  expressions are not supported (``rjct.search_criteria.invalid``).

Attributes (:data:`ATTRIBUTES`; names are case-insensitive, ``-`` = ``_``): ``poverty_score``
(``decile``), ``location`` (``region``, ``village_code``, ``area_code``: a Kemendagri code
prefix, or a region's exact name), ``age`` (this year minus the birth year, as the projection
derives it), ``YOB``, ``birth_date`` (``DOB``), ``sex`` (``gender``), ``group_size``
(``household_size``: living members), ``status``, ``is_disabled``, ``relationship_head`` and the
identifiers above. An attribute needs the scope that reveals it: filtering or sorting on
``poverty_score`` needs ``registry:read:socioeconomic``, on ``birth_date`` needs
``registry:read:identity``, or the answer would leak what the projection hides.

Records are ``Group`` (households) or ``Member`` (persons): ``response_entity``, else the
expression's ``collection``, else ``reg_record_type``, else ``Member`` for a person identifier
and ``Group`` otherwise. Person attributes on a ``Group`` search ask for households with such a
member (each condition on its own: ``age < 5 and sex = F`` finds households with a child under
five and a woman, who may be two people)."""

from __future__ import annotations

import math
import operator
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.sql.expression import FromClause

from registry.dci import records
from registry.models import RELATIONSHIPS, Person
from registry.projection import IDENTITY, READ, SOCIOECONOMIC
from registry.region.codes import code_range
from shared.auth import Caller

__all__ = [
    "ATTRIBUTES",
    "Attribute",
    "BY_NAME",
    "COMPARISONS",
    "ColumnOf",
    "Combination",
    "Condition",
    "Entity",
    "FILTER_INVALID",
    "Filter",
    "ItemRejected",
    "Kind",
    "LOCALE",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "MAX_IN_VALUES",
    "MAX_NUMBER",
    "MAX_PAGE_SIZE",
    "MAX_UNPAGINATED_RECORDS",
    "NOTIFY_DETAILS_INVALID",
    "NOTIFY_TYPES_INVALID",
    "Operator",
    "PAGINATION_INVALID",
    "PERSON_ID_INVALID",
    "REFERENCE_ID_INVALID",
    "REG_TYPE",
    "RegionName",
    "SEARCH_CRITERIA_INVALID",
    "SORT_INVALID",
    "TIMESTAMP_INVALID",
    "TOO_MANY_RECORDS",
    "VERSION",
    "attribute_key",
    "attribute_named",
    "in_regions",
    "parse_entity",
    "parse_filter",
    "query_shape",
]

# Status reason codes (SearchStatusReasonCode and SubscribeStatusReasonCode of the spec).
REFERENCE_ID_INVALID = "rjct.reference_id.invalid"
TIMESTAMP_INVALID = "rjct.timestamp.invalid"
SEARCH_CRITERIA_INVALID = "rjct.search_criteria.invalid"
FILTER_INVALID = "rjct.filter.invalid"
SORT_INVALID = "rjct.sort.invalid"
PAGINATION_INVALID = "rjct.pagination.invalid"
TOO_MANY_RECORDS = "rjct.search.too_many_records_found"
NOTIFY_TYPES_INVALID = "rjct.notify_types.invalid"
NOTIFY_DETAILS_INVALID = "rjct.notify_details.invalid"
PERSON_ID_INVALID = "rjct.person_id.invalid"
MAX_PAGE_SIZE = 1000
# An item without pagination gets every match in one answer, up to this many.
MAX_UNPAGINATED_RECORDS = 1000
MAX_IN_VALUES = 1000
# A query is a filter, not a program: bounded in size and nesting (no recursion blow-up).
MAX_CONDITIONS = 100
MAX_DEPTH = 10
# Numbers compared with SQL integers; anything beyond is a mistake, not an overflow to raise.
MAX_NUMBER = 1_000_000
REG_TYPE = "ns:org:RegistryType:Social"
VERSION = "1.0.0"
LOCALE = re.compile(r"^[a-z]{3}$")


class ItemRejected(Exception):
    """One item of a batch cannot be answered: its ``rjct.*`` reason code and why."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.message = message


Kind = Literal[
    "number", "date", "region", "sex", "status", "nik_kk", "uuid", "bool", "relationship"
]
Operator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in"]
Entity = Literal["Group", "Member"]
ColumnOf = Callable[[FromClause, Caller], ColumnElement[Any]]
_ORDERED_OPERATORS: frozenset[str] = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in"})
_EQUALITY_OPERATORS: frozenset[str] = frozenset({"eq", "ne", "in"})


@dataclass(frozen=True)
class Attribute:
    """A queryable attribute: what it is over a person row and/or a household row."""

    name: str
    kind: Kind
    scope: str
    person: ColumnOf | None = None
    household: ColumnOf | None = None

    @property
    def operators(self) -> frozenset[str]:
        ordered = self.kind in ("number", "date")
        return _ORDERED_OPERATORS if ordered else _EQUALITY_OPERATORS

    def column_for(self, entity: Entity) -> tuple[Literal["person", "household"], ColumnOf]:
        """Which row the attribute is read from for ``entity``: its own row when it has one."""
        if entity == records.MEMBER:
            if self.person is not None:
                return "person", self.person
            assert self.household is not None
            return "household", self.household
        if self.household is not None:
            return "household", self.household
        assert self.person is not None
        return "person", self.person


def in_regions(column: ColumnElement[Any], caller: Caller) -> ColumnElement[bool]:
    """``column`` (a village code) lies inside the caller's regions (always, for national)."""
    if caller.is_national:
        return true()
    return or_(*(column.between(*code_range(prefix)) for prefix in caller.regions))


def _group_size(h: FromClause, caller: Caller) -> ColumnElement[Any]:
    """Living members of the household the caller may see (see ``records.group_record``)."""
    member = Person.__table__.alias("size_member")
    return (
        select(func.count())
        .select_from(member)
        .where(
            member.c.household_id == h.c.id,
            member.c.status == "alive",
            in_regions(member.c.village_code, caller),
        )
        .scalar_subquery()
    )


def _birth_year(p: FromClause, _: Caller) -> ColumnElement[Any]:
    return func.extract("year", p.c.birth_date)


def _age(p: FromClause, caller: Caller) -> ColumnElement[Any]:
    # The age reached this year, from the birth year alone: what ``registry:read`` reveals.
    return func.extract("year", func.current_date()) - _birth_year(p, caller)


def _column(name: str) -> ColumnOf:
    return lambda table, _: table.c[name]


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("poverty_score", "number", SOCIOECONOMIC, household=_column("decile")),
    Attribute(
        "location",
        "region",
        READ,
        person=_column("village_code"),
        household=_column("village_code"),
    ),
    Attribute("age", "number", READ, person=_age),
    Attribute("YOB", "number", READ, person=_birth_year),
    Attribute("birth_date", "date", IDENTITY, person=_column("birth_date")),
    Attribute("sex", "sex", READ, person=_column("sex")),
    Attribute("group_size", "number", READ, household=_group_size),
    Attribute("status", "status", READ, person=_column("status"), household=_column("status")),
    Attribute("is_disabled", "bool", READ, person=lambda p, _: p.c.disability != "none"),
    Attribute("relationship_head", "relationship", READ, person=_column("relationship")),
    # Looking a record up by an identifier the caller already holds needs only registry:read,
    # as GET /v1/persons/by-nik does.
    Attribute(records.NIK, "nik_kk", READ, person=_column("nik")),
    Attribute(records.KK, "nik_kk", READ, household=_column("kk")),
    Attribute(records.PERSON_ID, "uuid", READ, person=_column("id")),
    Attribute(records.HOUSEHOLD_ID, "uuid", READ, household=_column("id")),
)
BY_NAME = {attribute.name.lower(): attribute for attribute in ATTRIBUTES}
_ALIASES = {
    "decile": "poverty_score",
    "desil": "poverty_score",
    "region": "location",
    "village_code": "location",
    "area_code": "location",
    "region_code": "location",
    "yob": "YOB",
    "birth_year": "YOB",
    "dob": "birth_date",
    "gender": "sex",
    "household_size": "group_size",
    "relationship": "relationship_head",
    "uin": records.NIK,
    "nationalid": records.NIK,
    "national_id": records.NIK,
    "familycard": records.KK,
    "family_card": records.KK,
    "person_id": records.PERSON_ID,
    "household_id": records.HOUSEHOLD_ID,
}
_IDENTIFIER_TYPES = (records.NIK, records.KK, records.PERSON_ID, records.HOUSEHOLD_ID)


def attribute_key(name: object) -> str:
    """The lower-case canonical name of an attribute or identifier type (``UIN`` -> ``nik``,
    ``spdci-extensions:Decile`` -> ``poverty_score``)."""
    key = str(name).strip().rsplit(":", 1)[-1].lower().replace("-", "_")
    return _ALIASES.get(key, key).lower()


def attribute_named(name: object, reason: str) -> Attribute:
    if not isinstance(name, str) or not name.strip():
        raise ItemRejected(reason, f"attribute name must be a non-empty string, not {name!r}")
    attribute = BY_NAME.get(attribute_key(name))
    if attribute is None:
        known = ", ".join(a.name for a in ATTRIBUTES)
        raise ItemRejected(reason, f"unknown attribute {name!r}; known attributes: {known}")
    return attribute


@dataclass(frozen=True)
class Condition:
    attribute: Attribute
    operator: Operator
    value: Any  # coerced for the attribute's kind; a tuple for ``in``


@dataclass(frozen=True)
class Combination:
    kind: Literal["and", "or", "not"]
    parts: tuple[Filter, ...]


Filter = Condition | Combination
_OPERATORS: dict[str, Operator] = {
    "eq": "eq",
    "ne": "ne",
    "lt": "lt",
    "le": "le",
    "lte": "le",
    "gt": "gt",
    "ge": "ge",
    "gte": "ge",
    "in": "in",
}
_SEX = {"m": "M", "male": "M", "l": "M", "f": "F", "female": "F", "p": "F"}
_STATUSES: dict[Entity, dict[str, str]] = {
    "Member": {"alive": "alive", "deceased": "deceased", "dead": "deceased", "moved": "moved"},
    "Group": {"active": "active", "dissolved": "dissolved"},
}
_REGION_CODE = re.compile(r"^[0-9]{2}([0-9]{2}([0-9]{2}([0-9]{4})?)?)?$")
_DIGITS16 = re.compile(r"^[0-9]{16}$")
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
}


@dataclass(frozen=True)
class RegionName:
    """A ``location`` given by name: resolved to region codes when compiled."""

    name: str


class _Parser:
    """Turns one query (or subscription filter) into a :data:`Filter` for ``entity``."""

    def __init__(self, entity: Entity, scopes: frozenset[str] | None, reason: str) -> None:
        self.entity = entity
        self.scopes = scopes  # None: check scopes later (a subscription parsed without caller)
        self.reason = reason
        self.conditions = 0

    def reject(self, message: str) -> ItemRejected:
        return ItemRejected(self.reason, message)

    def condition(self, name: object, operator: object, value: object) -> Condition:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.reject(f"a query may hold up to {MAX_CONDITIONS} conditions")
        attribute = attribute_named(name, self.reason)
        if self.scopes is not None and attribute.scope not in self.scopes:
            raise self.reject(f"the attribute {attribute.name} needs the scope {attribute.scope}")
        op = _OPERATORS.get(str(operator).lower().lstrip("$"))
        if op is None or op not in attribute.operators:
            allowed = ", ".join(sorted(attribute.operators))
            raise self.reject(
                f"operator {operator!r} does not apply to {attribute.name} ({allowed})"
            )
        if op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise self.reject(
                    f"{attribute.name} in: needs a list of 1 to {MAX_IN_VALUES} values"
                )
            return Condition(attribute, op, tuple(self.value(attribute, v) for v in value))
        return Condition(attribute, op, self.value(attribute, value))

    def value(self, attribute: Attribute, value: object) -> Any:
        name = attribute.name
        if attribute.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise self.reject(f"{name} needs a number, not {value!r}")
            try:
                number = float(value)
            except ValueError:
                raise self.reject(f"{name} needs a number, not {value!r}") from None
            if not math.isfinite(number) or abs(number) > MAX_NUMBER:
                raise self.reject(f"{name} needs a number within ±{MAX_NUMBER:,}")
            return int(number) if number.is_integer() else number
        takes_bool = attribute.kind == "bool" and isinstance(value, bool)
        if not takes_bool and (isinstance(value, bool) or not isinstance(value, str | int)):
            raise self.reject(f"{name} does not take {value!r}")
        text = str(value).strip()
        match attribute.kind:
            case "date":
                try:
                    return date.fromisoformat(text[:10])
                except ValueError:
                    raise self.reject(f"{name} needs a date (YYYY-MM-DD), not {value!r}") from None
            case "region":
                if _REGION_CODE.match(text):
                    return text
                if text:
                    return RegionName(text)
                raise self.reject(f"{name} needs a region code or name")
            case "sex":
                if text.lower() in _SEX:
                    return _SEX[text.lower()]
                raise self.reject(f"sex is male or female (M or F), not {value!r}")
            case "status":
                statuses = _STATUSES[self.entity]
                if text.lower() in statuses:
                    return statuses[text.lower()]
                allowed = ", ".join(sorted(set(statuses.values())))
                raise self.reject(f"status of a {self.entity} is one of {allowed}")
            case "nik_kk":
                if _DIGITS16.match(text):
                    return text
                raise self.reject(f"{name} is 16 digits, not {value!r}")
            case "uuid":
                try:
                    return uuid.UUID(text)
                except ValueError:
                    raise self.reject(f"{name} is a registry id (UUID), not {value!r}") from None
            case "bool":
                if isinstance(value, bool):
                    return value
                if text.lower() in ("true", "false"):
                    return text.lower() == "true"
                raise self.reject(f"{name} is true or false, not {value!r}")
            case "relationship":
                if text.lower() in RELATIONSHIPS:
                    return text.lower()
                raise self.reject(f"relationship_head is one of {', '.join(RELATIONSHIPS)}")
        raise self.reject(f"{name} does not take {value!r}")  # pragma: no cover

    # idtype-value ---------------------------------------------------------------------------
    def identifier(self, query: Mapping[str, Any]) -> Filter:
        kind, value = query.get("type"), query.get("value")
        key = attribute_key(kind)
        if key not in {name.lower() for name in _IDENTIFIER_TYPES}:
            raise ItemRejected(
                SEARCH_CRITERIA_INVALID if self.reason == FILTER_INVALID else self.reason,
                f"identifier type {kind!r} is not held by this registry; use one of "
                f"{', '.join(_IDENTIFIER_TYPES)} (UIN and NationalID mean NIK)",
            )
        operator = "in" if isinstance(value, list) else "eq"
        return self.condition(key, operator, value)

    # predicate ------------------------------------------------------------------------------
    def predicate(self, entries: list[Any]) -> Filter:
        if not entries:
            raise self.reject("a predicate query needs at least one expression")
        parsed: list[tuple[float, int, Filter]] = []
        for position, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("expression1"), dict):
                raise self.reject(f"predicate entry {position + 1} needs an expression1 object")
            first = self.expression(entry["expression1"])
            condition = entry.get("condition")
            second = entry.get("expression2")
            node: Filter = first
            if second is not None or condition is not None:
                if not isinstance(second, dict):
                    raise self.reject(
                        f"predicate entry {position + 1}: condition needs expression2"
                    )
                other = self.expression(second)
                match str(condition).lower():
                    case "and":
                        node = Combination("and", (first, other))
                    case "or":
                        node = Combination("or", (first, other))
                    case "not":
                        node = Combination("and", (first, Combination("not", (other,))))
                    case _:
                        raise self.reject(f"condition is and, or or not, not {condition!r}")
            seq = entry.get("seq_num", position)
            if isinstance(seq, bool) or not isinstance(seq, int | float):
                raise self.reject(f"seq_num must be a number, not {seq!r}")
            parsed.append((float(seq), position, node))
        nodes = tuple(node for _, _, node in sorted(parsed, key=lambda p: (p[0], p[1])))
        return nodes[0] if len(nodes) == 1 else Combination("and", nodes)

    def expression(self, expression: Mapping[str, Any]) -> Condition:
        return self.condition(
            expression.get("attribute_name"),
            expression.get("operator"),
            expression.get("attribute_value"),
        )

    # expression (MongoDB style) -------------------------------------------------------------
    def document(self, query: object, depth: int = 0) -> Filter:
        if depth > MAX_DEPTH:
            raise self.reject(f"an expression may nest up to {MAX_DEPTH} levels")
        if not isinstance(query, dict) or not query:
            raise self.reject("an expression query is a non-empty object")
        parts: list[Filter] = []
        for key, value in query.items():
            match key:
                case "$and" | "$or" | "$nor":
                    if not isinstance(value, list) or not value:
                        raise self.reject(f"{key} needs a non-empty list")
                    children = tuple(self.document(child, depth + 1) for child in value)
                    if key == "$nor":
                        parts.append(Combination("not", (Combination("or", children),)))
                    else:
                        parts.append(Combination("and" if key == "$and" else "or", children))
                case "$not":
                    parts.append(Combination("not", (self.document(value, depth + 1),)))
                case _ if key.startswith("$"):
                    raise self.reject(f"unknown logical operator {key!r} ($and, $or, $not, $nor)")
                case _:
                    parts.extend(self.field(key, value))
        return parts[0] if len(parts) == 1 else Combination("and", tuple(parts))

    def field(self, name: str, value: object) -> list[Filter]:
        if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
            return [self.condition(name, operator, v) for operator, v in value.items()]
        if isinstance(value, list):
            return [self.condition(name, "in", value)]
        return [self.condition(name, "eq", value)]


def parse_entity(spelling: object, reason: str = SEARCH_CRITERIA_INVALID) -> Entity | None:
    if not isinstance(spelling, str) or not spelling.strip():
        return None
    name = spelling.strip().rsplit(":", 1)[-1].lower()
    if name in ("group", "household", "family", "srgroup"):
        return "Group"
    if name in ("member", "person", "srperson", "individual"):
        return "Member"
    raise ItemRejected(reason, f"records are Group (households) or Member, not {spelling!r}")


@dataclass(frozen=True)
class _Query:
    shape: Literal["idtype-value", "predicate", "expression"]
    body: Any
    collection: object = None


def query_shape(query: object, query_type: object, reason: str) -> _Query:
    """The query's shape, recognised from its structure (``query_type`` only breaks ties)."""
    known = ("idtype-value", "expression", "predicate")
    if query_type is not None and query_type not in known:
        if str(query_type).lower() == "graphql":
            raise ItemRejected(reason, "graphql queries are not supported; use " + ", ".join(known))
        raise ItemRejected(reason, f"query_type is one of {', '.join(known)}, not {query_type!r}")
    if isinstance(query, list):
        return _Query("predicate", query)
    if isinstance(query, dict):
        expression = query.get("expression")
        value = query.get("value")
        if isinstance(value, dict) and "expression" in value:
            expression = value["expression"]
        if isinstance(expression, str):
            raise ItemRejected(reason, "graphql expressions are not supported; use a document")
        if isinstance(expression, dict):
            if "query" in expression:
                return _Query("expression", expression["query"], expression.get("collection"))
            return _Query("expression", expression)
        if "type" in query and "value" in query:
            return _Query("idtype-value", query)
        if query_type == "expression":
            return _Query("expression", query)
    raise ItemRejected(
        reason, "query is {type, value} (idtype-value), a list of predicates or an expression"
    )


def _default_entity(parsed: _Query) -> Entity:
    """``Member`` for a person identifier, else ``Group`` (the spec's primary record)."""
    if parsed.shape == "idtype-value":
        if attribute_key(parsed.body.get("type")) not in ("kk", "household_id"):
            return "Member"
    return "Group"


def parse_filter(
    query: object,
    *,
    query_type: object = None,
    entity: object = None,
    record_type: object = None,
    scopes: frozenset[str] | None = None,
    reason: str = FILTER_INVALID,
) -> tuple[Entity, Filter | None]:
    """The record type asked for and the filter tree of a query or subscription filter.

    An empty filter (``{}`` or ``[]``) matches every record. Raises :class:`ItemRejected`
    with ``reason`` for a bad condition (``rjct.search_criteria.invalid`` for a bad shape).
    """
    shape_reason = SEARCH_CRITERIA_INVALID if reason == FILTER_INVALID else reason
    if query in ({}, []):
        chosen = (
            parse_entity(entity, shape_reason) or parse_entity(record_type, shape_reason) or "Group"
        )
        return chosen, None
    parsed = query_shape(query, query_type, shape_reason)
    collection = parse_entity(parsed.collection, shape_reason)  # checked even when not deciding
    chosen = (
        parse_entity(entity, shape_reason)
        or collection
        or parse_entity(record_type, shape_reason)
        or _default_entity(parsed)
    )
    parser = _Parser(chosen, scopes, reason)
    match parsed.shape:
        case "idtype-value":
            return chosen, parser.identifier(parsed.body)
        case "predicate":
            return chosen, parser.predicate(parsed.body)
        case _:
            return chosen, parser.document(parsed.body)
