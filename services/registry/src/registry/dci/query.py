"""SPDCI search items and subscription filters, answered from the registry tables.

One ``search_request`` item becomes one ``search_response`` item: the item's query is parsed
into a small filter tree (:class:`Condition` / :class:`Combination`), compiled to SQL over the
``person`` and ``household`` tables, counted, sorted, paginated, and the page is read with the
caller's projection (:mod:`registry.projection`) and mapped to DCI records
(:mod:`registry.dci.records`). A bad item is answered ``rjct`` with the spec's reason code; the
other items of the batch are answered normally.

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
five and a woman, who may be two people).

Region restriction: a regional caller's conditions, counts, members and ``group_size`` only
ever see rows inside its regions, so a record outside reads exactly like one that does not
exist. Every returned person and household is written to the audit log with the item's
``consent`` / ``authorize`` purpose (:func:`registry.dci.envelope.item_purpose`), else the default
purpose the caller passes.
"""

from __future__ import annotations

import math
import operator
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    false,
    func,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import FromClause

from registry.dci import records
from registry.dci.envelope import item_purpose
from registry.dci.events import canonical_event_type
from registry.models import RELATIONSHIPS, Household, Person, Region, audit_log
from registry.nik import nik_problems
from registry.projection import IDENTITY, READ, SOCIOECONOMIC, projection_for
from registry.regions import code_range
from shared.audit import record_read
from shared.auth import Caller

__all__ = [
    "ATTRIBUTES",
    "LOCALE",
    "MAX_PAGE_SIZE",
    "MAX_UNPAGINATED_RECORDS",
    "REG_TYPE",
    "Combination",
    "Condition",
    "ItemRejected",
    "answer_search_item",
    "check_followed_people",
    "check_subscription",
    "notify_records",
    "parse_filter",
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


# --- attributes ---------------------------------------------------------------------------------

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


def _in_regions(column: ColumnElement[Any], caller: Caller) -> ColumnElement[bool]:
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
            _in_regions(member.c.village_code, caller),
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
_BY_NAME = {attribute.name.lower(): attribute for attribute in ATTRIBUTES}
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


def _attribute_key(name: object) -> str:
    """The lower-case canonical name of an attribute or identifier type (``UIN`` -> ``nik``,
    ``spdci-extensions:Decile`` -> ``poverty_score``)."""
    key = str(name).strip().rsplit(":", 1)[-1].lower().replace("-", "_")
    return _ALIASES.get(key, key).lower()


def _attribute(name: object, reason: str) -> Attribute:
    if not isinstance(name, str) or not name.strip():
        raise ItemRejected(reason, f"attribute name must be a non-empty string, not {name!r}")
    attribute = _BY_NAME.get(_attribute_key(name))
    if attribute is None:
        known = ", ".join(a.name for a in ATTRIBUTES)
        raise ItemRejected(reason, f"unknown attribute {name!r}; known attributes: {known}")
    return attribute


# --- filter tree --------------------------------------------------------------------------------


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


_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
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
        attribute = _attribute(name, self.reason)
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
        key = _attribute_key(kind)
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


# --- parsing a criteria ------------------------------------------------------------------------


def _entity(spelling: object, reason: str = SEARCH_CRITERIA_INVALID) -> Entity | None:
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


def _query_shape(query: object, query_type: object, reason: str) -> _Query:
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
        if _attribute_key(parsed.body.get("type")) not in ("kk", "household_id"):
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
        chosen = _entity(entity, shape_reason) or _entity(record_type, shape_reason) or "Group"
        return chosen, None
    parsed = _query_shape(query, query_type, shape_reason)
    collection = _entity(parsed.collection, shape_reason)  # checked even when not deciding
    chosen = (
        _entity(entity, shape_reason)
        or collection
        or _entity(record_type, shape_reason)
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


# --- SQL ----------------------------------------------------------------------------------------


class _Compiler:
    """Compiles a filter for one entity and caller into a WHERE clause over ``p`` / ``h``."""

    def __init__(self, session: AsyncSession, entity: Entity, caller: Caller) -> None:
        self.session = session
        self.entity = entity
        self.caller = caller
        self.p = Person.__table__.alias("p")
        self.h = Household.__table__.alias("h")

    def base(self) -> Select[Any]:
        """The ids of the entity's rows the caller may see (to add conditions to)."""
        if self.entity == records.MEMBER:
            return (
                select(self.p.c.id)
                .select_from(self.p.outerjoin(self.h, self.h.c.id == self.p.c.household_id))
                .where(_in_regions(self.p.c.village_code, self.caller))
            )
        return select(self.h.c.id).where(_in_regions(self.h.c.village_code, self.caller))

    async def where(self, node: Filter | None) -> ColumnElement[bool]:
        if node is None:
            return true()
        if isinstance(node, Combination):
            parts = [await self.where(part) for part in node.parts]
            if node.kind == "not":
                return not_(parts[0])
            return and_(*parts) if node.kind == "and" else or_(*parts)
        side, column_of = node.attribute.column_for(self.entity)
        if self.entity == records.GROUP and side == "person":
            # A household with such a member (among those the caller may see).
            member = Person.__table__.alias()
            compared = await self.compare(column_of(member, self.caller), node)
            return exists().where(
                member.c.household_id == self.h.c.id,
                _in_regions(member.c.village_code, self.caller),
                compared,
            )
        table = self.p if side == "person" else self.h
        return await self.compare(column_of(table, self.caller), node)

    async def compare(self, column: ColumnElement[Any], node: Condition) -> ColumnElement[bool]:
        if node.attribute.kind == "region":
            values = node.value if node.operator == "in" else (node.value,)
            prefixes = [prefix for value in values for prefix in await self.region_codes(value)]
            inside = (
                or_(*(column.between(*code_range(p)) for p in prefixes)) if prefixes else false()
            )
            return not_(inside) if node.operator == "ne" else inside
        if node.operator == "in":
            return column.in_(node.value)
        compared: ColumnElement[bool] = _COMPARISONS[node.operator](column, node.value)
        return compared

    async def region_codes(self, value: str | RegionName) -> list[str]:
        """A code is its own prefix; a name is every region of that name (case-insensitive)."""
        if isinstance(value, str):
            return [value]
        rows = await self.session.scalars(
            select(Region.code).where(func.lower(Region.name) == value.name.lower())
        )
        return list(rows)

    def order(self, sort: object) -> list[ColumnElement[Any]]:
        """ORDER BY of the spec's ``sort`` list, then the id (so pages never overlap)."""
        if sort is None:
            sort = []
        if not isinstance(sort, list):
            raise ItemRejected(SORT_INVALID, "sort is a list of {attribute_name, sort_order}")
        order: list[ColumnElement[Any]] = []
        for entry in sort:
            if not isinstance(entry, dict):
                raise ItemRejected(SORT_INVALID, "sort is a list of {attribute_name, sort_order}")
            attribute = _attribute(entry.get("attribute_name"), SORT_INVALID)
            if attribute.scope not in self.caller.scopes:
                raise ItemRejected(
                    SORT_INVALID, f"sorting by {attribute.name} needs the scope {attribute.scope}"
                )
            side, column_of = attribute.column_for(self.entity)
            if self.entity == records.GROUP and side == "person":
                raise ItemRejected(
                    SORT_INVALID,
                    f"Group records cannot be sorted by the person attribute {attribute.name}",
                )
            direction = str(entry.get("sort_order", "asc")).lower()
            if direction not in ("asc", "desc"):
                raise ItemRejected(SORT_INVALID, f"sort_order is asc or desc, not {direction!r}")
            column = column_of(self.p if side == "person" else self.h, self.caller)
            order.append((column.asc() if direction == "asc" else column.desc()).nulls_last())
        own = self.p if self.entity == records.MEMBER else self.h
        return [*order, own.c.id]


async def _read_records(
    session: AsyncSession, *, entity: Entity, ids: Sequence[uuid.UUID], caller: Caller, purpose: str
) -> list[dict[str, Any]]:
    """The DCI records of ``ids`` (in that order), projected for the caller and audited."""
    if not ids:
        return []
    projection = projection_for(caller.scopes)
    p = Person.__table__.alias("p")
    h = Household.__table__.alias("h")
    position = {str(row_id): index for index, row_id in enumerate(ids)}
    if entity == records.MEMBER:
        rows: Result[Any] = await session.execute(
            select(literal_column(projection.person_columns))
            .select_from(p.outerjoin(h, h.c.id == p.c.household_id))
            .where(p.c.id.in_(ids))
        )
        people = sorted((dict(row) for row in rows.mappings()), key=lambda r: position[r["id"]])
        places = await records.load_places(session, (person["village_code"] for person in people))
        await _audit(session, caller, purpose, people=[person["id"] for person in people])
        return [records.member_record(person, places) for person in people]

    household_rows: Result[Any] = await session.execute(
        select(literal_column(projection.household_columns)).select_from(h).where(h.c.id.in_(ids))
    )
    households = sorted(
        (dict(row) for row in household_rows.mappings()), key=lambda r: position[r["id"]]
    )
    member_rows = await session.execute(
        select(p.c.household_id.label("group_id"), literal_column(projection.member_columns))
        .select_from(p)
        .where(p.c.household_id.in_(ids), _in_regions(p.c.village_code, caller))
    )
    members: dict[str, list[dict[str, Any]]] = {}
    for row in member_rows.mappings():
        member = dict(row)
        members.setdefault(str(member.pop("group_id")), []).append(member)
    places = await records.load_places(
        session,
        [
            *(household["village_code"] for household in households),
            *(m["village_code"] for group in members.values() for m in group),
        ],
    )
    await _audit(
        session,
        caller,
        purpose,
        households=[household["id"] for household in households],
        people=[member["id"] for group in members.values() for member in group],
    )
    return [
        records.group_record(
            household, records.order_members(members.get(household["id"], [])), places
        )
        for household in households
    ]


async def _audit(
    session: AsyncSession,
    caller: Caller,
    purpose: str,
    *,
    people: Iterable[str] = (),
    households: Iterable[str] = (),
) -> None:
    for resource_type, resource_ids in (("household", households), ("person", people)):
        await record_read(
            session,
            audit_log,
            caller=caller,
            purpose=purpose,
            resource_type=resource_type,
            resource_ids=list(resource_ids),
        )


# --- search items -------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer")
    try:
        number = float(value)
    except ValueError:
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer") from None
    if not number.is_integer() or number < 1:
        raise ItemRejected(PAGINATION_INVALID, f"{name} must be a positive integer")
    return int(number)


def _pagination(raw: object) -> tuple[int, int] | None:
    """(page_size, page_number) of the item, 1-based; None when it asks for no pages."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or "page_size" not in raw:
        raise ItemRejected(PAGINATION_INVALID, "pagination needs page_size (and page_number)")
    size = _positive_int(raw["page_size"], "page_size")
    number = _positive_int(raw.get("page_number", 1), "page_number")
    if size > MAX_PAGE_SIZE:
        raise ItemRejected(PAGINATION_INVALID, f"page_size may not exceed {MAX_PAGE_SIZE}")
    return size, number


def _check_item(item: Mapping[str, Any]) -> Mapping[str, Any]:
    reference_id = item.get("reference_id")
    if not isinstance(reference_id, str) or not reference_id.strip() or len(reference_id) > 99:
        raise ItemRejected(REFERENCE_ID_INVALID, "reference_id is a non-empty string (<= 99)")
    timestamp = item.get("timestamp")
    try:
        if not isinstance(timestamp, str):
            raise ValueError
        datetime.fromisoformat(timestamp)
    except ValueError:
        raise ItemRejected(
            TIMESTAMP_INVALID, "timestamp is an ISO 8601 date-time, e.g. 2026-11-25T10:00:00Z"
        ) from None
    criteria = item.get("search_criteria")
    if not isinstance(criteria, dict):
        raise ItemRejected(SEARCH_CRITERIA_INVALID, "search_criteria is required (an object)")
    reg_type = criteria.get("reg_type")
    if reg_type is not None and "social" not in str(reg_type).lower():
        raise ItemRejected(
            SEARCH_CRITERIA_INVALID, f"this is a social registry ({REG_TYPE}), not {reg_type!r}"
        )
    if "query" not in criteria:
        raise ItemRejected(SEARCH_CRITERIA_INVALID, "search_criteria needs a query")
    return criteria


async def _search(
    session: AsyncSession, *, caller: Caller, criteria: Mapping[str, Any], purpose: str
) -> tuple[dict[str, Any], dict[str, int]]:
    entity, node = parse_filter(
        criteria["query"],
        query_type=criteria.get("query_type"),
        entity=criteria.get("response_entity"),
        record_type=criteria.get("reg_record_type"),
        scopes=caller.scopes,
    )
    compiler = _Compiler(session, entity, caller)
    order = compiler.order(criteria.get("sort"))
    page = _pagination(criteria.get("pagination"))
    matching = compiler.base().where(await compiler.where(node))
    total = await session.scalar(select(func.count()).select_from(matching.subquery())) or 0
    if page is None:
        if total > MAX_UNPAGINATED_RECORDS:
            raise ItemRejected(
                TOO_MANY_RECORDS,
                f"{total} records match, more than {MAX_UNPAGINATED_RECORDS} in one answer: "
                f"ask with pagination (page_size up to {MAX_PAGE_SIZE})",
            )
        size, number = MAX_UNPAGINATED_RECORDS, 1
    else:
        size, number = page
    ids = list(
        await session.scalars(matching.order_by(*order).limit(size).offset((number - 1) * size))
    )
    found = await _read_records(
        session,
        entity=entity,
        ids=ids,
        caller=caller,
        purpose=item_purpose(criteria, default=purpose),
    )
    data = {
        "version": VERSION,
        "reg_type": criteria.get("reg_type") or REG_TYPE,
        "reg_record_type": entity,
        "reg_records": found,
    }
    return data, {"page_size": size, "page_number": number, "total_count": total}


def _answer(item: Mapping[str, Any]) -> dict[str, Any]:
    reference_id = item.get("reference_id")
    answer: dict[str, Any] = {
        "reference_id": reference_id if isinstance(reference_id, str) else "",
        "timestamp": _now(),
    }
    locale = item.get("locale")
    if isinstance(locale, str) and LOCALE.match(locale):
        answer["locale"] = locale
    return answer


def _rejected(answer: dict[str, Any], rejected: ItemRejected) -> dict[str, Any]:
    return {
        **answer,
        "status": "rjct",
        "status_reason_code": rejected.reason_code,
        "status_reason_message": rejected.message[:999],
    }


async def answer_search_item(
    session: AsyncSession, *, caller: Caller, item: dict[str, Any], purpose: str
) -> dict[str, Any]:
    """One ``search_request`` item -> one ``search_response`` item.

    ``status`` ``succ`` with ``data`` (``reg_records``) and ``pagination``, or ``rjct`` with the
    reason code and message. Reads are audited with the item's stated purpose, else
    ``purpose``. Never raises for a bad item: it rejects it.
    """
    answer = _answer(item)
    try:
        criteria = _check_item(item)
        data, pagination = await _search(session, caller=caller, criteria=criteria, purpose=purpose)
    except ItemRejected as rejected:
        return _rejected(answer, rejected)
    return {**answer, "status": "succ", "data": data, "pagination": pagination}


# --- subscriptions ------------------------------------------------------------------------------


def check_subscription(criteria: dict[str, Any], *, caller: Caller | None = None) -> None:
    """Reject a ``subscribe_criteria`` the registry cannot honour.

    ``rjct.notify_types.invalid``: unknown ``reg_event_type`` or ``notify_record_type``;
    ``rjct.notify_details.invalid``: a bad ``filter`` / ``filter_type`` / ``frequency`` (the
    spec's subscribe reason codes have no ``rjct.filter.invalid``); ``rjct.person_id.invalid``:
    an ``idtype-value`` filter on a malformed person identifier (a NIK that breaks Dukcapil's
    rules, :func:`registry.nik.nik_problems`). With ``caller``, a filter on an attribute its
    scopes do not reveal is rejected as well. Whether the person exists (for the caller) is
    :func:`check_followed_people`.
    """
    if not isinstance(criteria, dict):
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "subscribe_criteria is an object")
    event_type = criteria.get("reg_event_type")
    if not isinstance(event_type, str) or canonical_event_type(event_type) is None:
        raise ItemRejected(
            NOTIFY_TYPES_INVALID,
            f"reg_event_type {event_type!r} is not one of REGISTER, UPDATE, DEATH, MOVE, "
            "NewHouseHoldMember, DECILE_CHANGE",
        )
    record_type = criteria.get("notify_record_type")
    try:
        if _entity(record_type) is None:
            raise ItemRejected(NOTIFY_TYPES_INVALID, "notify_record_type is required")
    except ItemRejected as rejected:
        raise ItemRejected(
            NOTIFY_TYPES_INVALID, f"notify_record_type is Group or Member, not {record_type!r}"
        ) from rejected
    if "filter" not in criteria:
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "subscribe_criteria needs a filter")
    followed = _followed_people(criteria)
    if followed is not None:
        attribute, values = followed
        for value in values:
            problems = _person_identifier_problems(attribute, value)
            if problems:
                raise ItemRejected(
                    PERSON_ID_INVALID, f"{attribute.name} {value!r}: {'; '.join(problems)}"
                )
    subscription_filter(
        criteria,
        scopes=caller.scopes if caller is not None else None,
    )
    _check_frequency(criteria.get("frequency"))


def _followed_people(criteria: Mapping[str, Any]) -> tuple[Attribute, list[Any]] | None:
    """The person identifier and its values when a subscription follows given people (an
    ``idtype-value`` filter on NIK, UIN or PERSON_ID), else None."""
    query = criteria.get("filter")
    if not isinstance(query, dict):
        return None
    try:
        parsed = _query_shape(query, criteria.get("filter_type"), NOTIFY_DETAILS_INVALID)
    except ItemRejected:
        return None  # the filter's own check says what is wrong
    if parsed.shape != "idtype-value":
        return None
    attribute = _BY_NAME.get(_attribute_key(query.get("type")))
    if attribute is None or attribute.name not in (records.NIK, records.PERSON_ID):
        return None
    value = query.get("value")
    values = value if isinstance(value, list) else [value]
    # An empty or oversized list is a bad filter, not a bad person: the parser rejects it.
    return (attribute, values) if 0 < len(values) <= MAX_IN_VALUES else None


def _person_identifier_problems(attribute: Attribute, value: object) -> list[str]:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return [f"{attribute.name} is a string, not {value!r}"]
    text = str(value).strip()
    if attribute.name == records.NIK:
        return nik_problems(text)
    try:
        uuid.UUID(text)
    except ValueError:
        return ["a registry person id is a UUID"]
    return []


async def check_followed_people(
    session: AsyncSession, criteria: Mapping[str, Any], *, caller: Caller, purpose: str
) -> None:
    """``rjct.person_id.invalid`` when a subscription follows a person the caller cannot read:
    unknown, or outside its regions, answered alike so the answer tells nothing of records
    outside them. Call after :func:`check_subscription` (which rejects malformed ids).

    The people found are audited with ``purpose``: that someone is in the registry is itself
    personal data, and a subscription accepted for their NIK reveals it.
    """
    followed = _followed_people(criteria)
    if followed is None:
        return
    attribute, values = followed
    wanted: dict[Any, object] = {}
    for value in values:
        text = str(value).strip()
        wanted[text if attribute.name == records.NIK else uuid.UUID(text)] = value
    compiler = _Compiler(session, "Member", caller)
    _, column_of = attribute.column_for("Member")
    column = column_of(compiler.p, caller)
    rows = await session.execute(
        compiler.base().add_columns(column).where(column.in_(list(wanted)))
    )
    found = {key: person_id for person_id, key in rows}
    await _audit(session, caller, purpose, people=[str(person_id) for person_id in found.values()])
    missing = [value for key, value in wanted.items() if key not in found]
    if missing:
        raise ItemRejected(
            PERSON_ID_INVALID,
            f"{attribute.name} {missing[0]!r}: no such person among the records you may read",
        )


def subscription_filter(
    criteria: Mapping[str, Any], *, scopes: frozenset[str] | None
) -> tuple[Entity, Filter | None]:
    """The record type and filter tree of a subscription (``rjct.notify_details.invalid``)."""
    filter_type = criteria.get("filter_type")
    if filter_type == "graphql":
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "graphql filters are not supported")
    return parse_filter(
        criteria.get("filter"),
        query_type=filter_type,
        entity=criteria.get("notify_record_type"),
        scopes=scopes,
        reason=NOTIFY_DETAILS_INVALID,
    )


def _check_frequency(frequency: object) -> None:
    if frequency is None:
        return
    if not isinstance(frequency, dict):
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "frequency is {start_time, end_time, frequency}")
    try:
        start = datetime.fromisoformat(str(frequency.get("start_time")))
        end = datetime.fromisoformat(str(frequency.get("end_time")))
    except ValueError:
        raise ItemRejected(
            NOTIFY_DETAILS_INVALID, "frequency start_time and end_time are ISO 8601 date-times"
        ) from None
    if (start.tzinfo is None) != (end.tzinfo is None) or end <= start:
        raise ItemRejected(NOTIFY_DETAILS_INVALID, "frequency end_time must follow start_time")


async def notify_records(
    session: AsyncSession,
    *,
    caller: Caller,
    criteria: Mapping[str, Any],
    purpose: str,
    person_id: uuid.UUID | None = None,
    household_id: uuid.UUID | None = None,
) -> tuple[Entity, list[dict[str, Any]]]:
    """The records a subscription is told about for one changed person or household.

    The subscription's filter is evaluated in SQL, with the subscriber's own scopes and
    regions, against the changed person (``person_id``: the person, or as a ``Group`` their
    household) or household (``household_id``: the household, or as ``Member`` records its
    members). Returned records are projected for the subscriber and audited with ``purpose``.
    Raises :class:`ItemRejected` if the filter no longer fits the subscriber's scopes.
    """
    entity, node = subscription_filter(criteria, scopes=caller.scopes)
    compiler = _Compiler(session, entity, caller)
    about: ColumnElement[bool]
    if person_id is not None and entity == records.MEMBER:
        about = compiler.p.c.id == person_id
    elif person_id is not None:
        person = Person.__table__.alias("changed")
        about = (
            compiler.h.c.id
            == select(person.c.household_id).where(person.c.id == person_id).scalar_subquery()
        )
    elif entity == records.MEMBER:
        about = compiler.p.c.household_id == household_id
    else:
        about = compiler.h.c.id == household_id
    matching = compiler.base().where(about, await compiler.where(node))
    ids = list(await session.scalars(matching.order_by(*compiler.order(None))))
    found = await _read_records(session, entity=entity, ids=ids, caller=caller, purpose=purpose)
    return entity, found
