"""Lookups for partner agencies: by id, NIK, KK, a batch of NIKs, and search.

Each lookup is **one SQL statement** that selects what the caller's scopes reveal (see
:mod:`registry.projection`), keeps to the caller's regions *in its WHERE clause*, and writes the
audit rows of exactly the records it returns in a data-modifying CTE of the same statement::

    WITH found AS (SELECT <projected columns> FROM person p ... WHERE <lookup> AND <region>),
         audit AS (INSERT INTO audit_log (...) SELECT <caller, purpose>, found.id FROM found)
    SELECT * FROM found

So a read and its audit rows are one atomic statement (both or neither), a batch of 1,000 NIKs
costs one SELECT and one audit INSERT, and a record outside the caller's region is never even
selected: it reads exactly like one that does not exist (404 or ``not_found``, no existence
oracle, no audit row either).

The statements are kept lean on purpose (the issue's benchmark holds HTTP lookups to a quarter
of raw asyncpg point-selects): each runs on a plain asyncpg connection, with asyncpg's
prepared-statement cache, outside an explicit transaction — a single statement is atomic by
itself, so BEGIN/COMMIT would only add two round trips. The routes run them on the request
session's own connection (joining its transaction if it opened one); the by-NIK lookup's common
case runs :func:`fetch_person` on a pool of its own, without FastAPI in the way
(:mod:`registry.lookup.hot_path`). Results are plain dicts (no ORM objects, no pydantic
validation on the way out) that the API layer serialises with orjson; the response models
document them.

Name search is typo-tolerant through pg_trgm: ``full_name % $name`` with the GIN trigram index,
at a similarity of ``NAME_SIMILARITY`` set with ``SET LOCAL`` semantics (``set_config(...,
true)``) in the request's transaction, which the search statement then joins.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from fastapi.exceptions import RequestValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import HouseholdNotFound, PersonNotFound
from registry.lookup.schemas import PersonSearch
from registry.projection import IDENTITY, SOCIOECONOMIC, Projection, projection_for
from shared.audit import AUDIT_TABLE
from shared.auth import Caller
from shared.errors import Forbidden
from shared.observability import current_trace_id

__all__ = [
    "NAME_SIMILARITY",
    "fetch_person",
    "lookup_persons",
    "read_household_by_kk",
    "read_person",
    "read_person_by_nik",
    "search_persons",
]

# pg_trgm similarity a name must reach to match. Against "Siti Aminah": "Siti Aminh" 0.64,
# "Sity Aminah" 0.71, "Siti Amniah" 0.50, "Aminah" 0.58 match; "Siti Fatimah" 0.32 and
# "Siti Rahmah" 0.33, which the default threshold of 0.3 would let in, do not.
NAME_SIMILARITY = 0.5


class _Statement:
    """Builds one statement's SQL with asyncpg's ``$n`` placeholders, collecting the values."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"

    def region(self, caller: Caller, column: str) -> str:
        """`` AND <column> is inside the caller's regions`` ('' for national callers)."""
        if not caller.regions:
            return ""
        patterns = [f"{prefix}%" for prefix in caller.regions]
        return f" AND {column} LIKE ANY({self.bind(patterns)}::text[])"

    def audit(self, caller: Caller, purpose: str, *sources: tuple[str, str, str]) -> str:
        """``audit AS (INSERT INTO audit_log ...)`` of (resource type, id column, relation)."""
        who = (
            f"{self.bind(caller.subject)}::text, {self.bind(caller.agency)}::text, "
            f"{self.bind(purpose)}::text, 'read'"
        )
        trace = f"{self.bind(current_trace_id())}::text"
        selects = " UNION ALL ".join(
            f"SELECT {who}, '{resource_type}', {id_column}, {trace} FROM {relation}"
            for resource_type, id_column, relation in sources
        )
        return f"audit AS (INSERT INTO {AUDIT_TABLE} ({_AUDIT_COLUMNS}) {selects})"


_AUDIT_COLUMNS = "subject, agency, purpose, action, resource_type, resource_id, trace_id"
# Members answer head first, then by relationship and age.
_MEMBER_ORDER = (
    "array_position(ARRAY['head','spouse','child','child_in_law','grandchild','parent',"
    "'in_law','other']::text[], {t}relationship::text), {t}birth_year, {t}id"
)


def _person_from(projection: Projection, *, household_filter: bool = False) -> str:
    if household_filter:
        return "person p JOIN household h ON h.id = p.household_id"
    if projection.needs_household_join:
        return "person p LEFT JOIN household h ON h.id = p.household_id"
    return "person p"


_SET_SIMILARITY = text(
    "SELECT set_config('pg_trgm.similarity_threshold', CAST(:threshold AS text), true)"
)


async def _driver(session: AsyncSession) -> Any:
    """The asyncpg connection under the request's session (see the module docstring)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def fetch_person(
    connection: asyncpg.Connection, *, key: str, value: object, caller: Caller, purpose: str
) -> dict[str, Any] | None:
    """The one-person statement (``key`` is ``id`` or ``nik``) on any asyncpg connection: the
    request session's, or the statement pool of :mod:`registry.lookup.hot_path`."""
    projection = projection_for(caller.scopes)
    sql = _Statement()
    where = f"p.{key} = {sql.bind(value)}" + sql.region(caller, "p.village_code")
    query = (
        f"WITH found AS (SELECT {projection.person_columns} FROM {_person_from(projection)}"
        f" WHERE {where}), {sql.audit(caller, purpose, ('person', 'id', 'found'))}"
        " SELECT * FROM found"
    )
    row = await connection.fetchrow(query, *sql.values)
    return None if row is None else dict(row)


async def _one_person(
    session: AsyncSession, *, key: str, value: object, caller: Caller, purpose: str
) -> dict[str, Any]:
    person = await fetch_person(
        await _driver(session), key=key, value=value, caller=caller, purpose=purpose
    )
    if person is None:
        raise PersonNotFound()
    return person


async def read_person(
    session: AsyncSession, *, person_id: uuid.UUID, caller: Caller, purpose: str
) -> dict[str, Any]:
    """One person by registry id, projected and audited; 404 if unknown or outside the region."""
    return await _one_person(session, key="id", value=person_id, caller=caller, purpose=purpose)


async def read_person_by_nik(
    session: AsyncSession, *, nik: str, caller: Caller, purpose: str
) -> dict[str, Any]:
    """One person by NIK, projected and audited; 404 if unknown or outside the region."""
    return await _one_person(session, key="nik", value=nik, caller=caller, purpose=purpose)


async def lookup_persons(
    session: AsyncSession, *, niks: Sequence[str], caller: Caller, purpose: str
) -> dict[str, Any]:
    """Answer each distinct NIK once, in asked order: one SELECT, one audit INSERT."""
    asked = list(dict.fromkeys(niks))
    projection = projection_for(caller.scopes)
    sql = _Statement()
    where = f"p.nik = ANY({sql.bind(asked)}::text[])" + sql.region(caller, "p.village_code")
    query = (
        f"WITH found AS (SELECT p.nik AS lookup_nik, {projection.person_columns}"
        f" FROM {_person_from(projection)} WHERE {where}),"
        f" {sql.audit(caller, purpose, ('person', 'id', 'found'))} SELECT * FROM found"
    )
    found: dict[str, dict[str, Any]] = {}
    for row in await (await _driver(session)).fetch(query, *sql.values):
        person = dict(row)
        found[person.pop("lookup_nik")] = person
    results = [
        {"nik": nik, "status": "found", "person": found[nik]}
        if nik in found
        else {"nik": nik, "status": "not_found", "person": None}
        for nik in asked
    ]
    return {"results": results, "found": len(found), "not_found": len(asked) - len(found)}


async def read_household_by_kk(
    session: AsyncSession, *, kk: str, caller: Caller, purpose: str
) -> dict[str, Any]:
    """A household with the members the caller may see; 404 if unknown or outside the region.

    One statement: the household, its visible members and the audit rows of both; PostgreSQL
    assembles the two parts as JSON.
    """
    projection = projection_for(caller.scopes)
    sql = _Statement()
    household_where = f"h.kk = {sql.bind(kk)}" + sql.region(caller, "h.village_code")
    member_region = sql.region(caller, "p.village_code")
    query = (
        f"WITH hh AS (SELECT h.id AS household_uuid, {projection.household_columns}"
        f" FROM household h WHERE {household_where}),"
        f" found AS (SELECT {projection.member_columns} FROM person p"
        f" JOIN hh ON p.household_id = hh.household_uuid{member_region}),"
        f" {sql.audit(caller, purpose, ('household', 'id', 'hh'), ('person', 'id', 'found'))}"
        " SELECT (SELECT row_to_json(hh)::text FROM hh) AS household,"
        f" (SELECT json_agg(f ORDER BY {_MEMBER_ORDER.format(t='f.')})::text FROM found f)"
        " AS members"
    )
    row = await (await _driver(session)).fetchrow(query, *sql.values)
    if row["household"] is None:
        raise HouseholdNotFound()
    household: dict[str, Any] = orjson.loads(row["household"])
    del household["household_uuid"]
    household["members"] = orjson.loads(row["members"]) if row["members"] else []
    return household


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )


async def search_persons(
    session: AsyncSession, *, search: PersonSearch, caller: Caller, purpose: str
) -> dict[str, Any]:
    """Keyset-paginated search inside the caller's regions; every returned person is audited."""
    projection = projection_for(caller.scopes)
    deciles = search.decile_min is not None or search.decile_max is not None
    if search.name is not None and not projection.allows(IDENTITY):
        raise Forbidden(f"searching by name needs the scope {IDENTITY}", field="query.name")
    if deciles and not projection.allows(SOCIOECONOMIC):
        field = "decile_min" if search.decile_min is not None else "decile_max"
        raise Forbidden(
            f"filtering by decile needs the scope {SOCIOECONOMIC}", field=f"query.{field}"
        )
    if (search.decile_min or 0) > (search.decile_max or 10):
        raise _invalid("decile_min", "decile_min may not exceed decile_max")

    sql = _Statement()
    where = ["true"]
    if search.region is not None:
        where.append(f"p.village_code LIKE {sql.bind(search.region + '%')}")
    if search.status is not None:
        where.append(f"p.status = {sql.bind(search.status)}")
    if search.decile_min is not None:
        where.append(f"h.decile >= {sql.bind(search.decile_min)}::int")
    if search.decile_max is not None:
        where.append(f"h.decile <= {sql.bind(search.decile_max)}::int")
    if search.name is not None:
        where.append(f"p.full_name % {sql.bind(search.name)}")
        # In the request's transaction, so the GIN index itself prunes at this similarity.
        await session.execute(_SET_SIMILARITY, {"threshold": str(NAME_SIMILARITY)})
    if search.after is not None:
        where.append(f"p.id > {sql.bind(search.after)}")
    conditions = " AND ".join(where) + sql.region(caller, "p.village_code")
    # ``id`` is selected as text; order by its uuid value, as the keyset does.
    page = f"(SELECT id FROM found ORDER BY id::uuid LIMIT {sql.bind(search.limit)}) AS page"
    query = (
        f"WITH found AS (SELECT {projection.person_columns}"
        f" FROM {_person_from(projection, household_filter=deciles)}"
        f" WHERE {conditions} ORDER BY p.id LIMIT {sql.bind(search.limit + 1)}),"
        f" {sql.audit(caller, purpose, ('person', 'id', page))}"
        " SELECT * FROM found ORDER BY id::uuid"
    )
    rows = [dict(row) for row in await (await _driver(session)).fetch(query, *sql.values)]
    items = rows[: search.limit]
    more = len(rows) > search.limit
    return {"items": items, "next_cursor": items[-1]["id"] if more else None}
