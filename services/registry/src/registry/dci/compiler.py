"""A filter tree compiled to SQL over the ``person`` and ``household`` tables, and the matching
records read with the caller's projection (:mod:`registry.projection`), mapped to DCI records
(:mod:`registry.dci.records`) and audited.

Region restriction: a regional caller's conditions, counts, members and ``group_size`` only
ever see rows inside its regions, so a record outside reads exactly like one that does not
exist. Every returned person and household is written to the audit log with the item's
``consent`` / ``authorize`` purpose (:func:`registry.dci.envelope.item_purpose`), else the default
purpose the caller passes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

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

from registry.dci import records
from registry.dci.filters import (
    COMPARISONS,
    SORT_INVALID,
    Combination,
    Condition,
    Entity,
    Filter,
    ItemRejected,
    RegionName,
    attribute_named,
    in_regions,
)
from registry.models import Household, Person, Region, audit_log
from registry.projection import projection_for
from registry.region.codes import code_range
from shared.audit import record_read
from shared.auth import Caller

__all__ = ["Compiler", "audit_reads", "read_records"]


class Compiler:
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
                .where(in_regions(self.p.c.village_code, self.caller))
            )
        return select(self.h.c.id).where(in_regions(self.h.c.village_code, self.caller))

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
                in_regions(member.c.village_code, self.caller),
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
        compared: ColumnElement[bool] = COMPARISONS[node.operator](column, node.value)
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
            attribute = attribute_named(entry.get("attribute_name"), SORT_INVALID)
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


async def read_records(
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
        await audit_reads(session, caller, purpose, people=[person["id"] for person in people])
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
        .where(p.c.household_id.in_(ids), in_regions(p.c.village_code, caller))
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
    await audit_reads(
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


async def audit_reads(
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
