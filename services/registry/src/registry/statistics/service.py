"""Counts of households and people by region, decile and status, computed from the registry.

The *information* function: aggregate numbers any service centre can reproduce from the data,
never typed in. What is counted:

* ``households``: active family cards (a card dissolved by a merge no longer counts) whose
  village lies under the region;
* ``people``: everyone recorded in a village under the region, split by status
  (``alive``/``deceased``/``moved``); ``people`` is their sum.

Groupings (``by``):

* ``decile``: the household's DTSEN decile 1-10, or ``unranked`` (a card without a decile yet;
  people without an active card, e.g. the deceased left on a card dissolved by a merge, count
  there too);
* ``status``: the people of each status; ``households`` is then the number of cards with at
  least one member of that status (e.g. households that recorded a death);
* ``region``: the next region level below the prefix (provinces for the whole country,
  regencies of a province, districts of a regency, villages of a district), every child region
  listed with its name, empty ones with zeros.

Only counts leave this module: no person, card or address. Region prefixes become an index
range on the 10-digit village code (see :func:`registry.region.codes.code_range`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from registry.errors import NoLowerRegionLevel, RegionOutsideScope
from registry.region.codes import code_range
from registry.region.service import read_region
from registry.statistics.schemas import Counts, Grouping, Statistics, StatisticsGroup
from shared.auth import Caller

__all__ = ["read_statistics"]

STATUSES = ("alive", "deceased", "moved")
UNRANKED = "unranked"
# Length of the codes one level below a prefix of this length.
NEXT_LEVEL = {0: 2, 2: 4, 4: 6, 6: 10}


def _where(column: str, region: str | None) -> str:
    return f"{column} BETWEEN :lo AND :hi" if region else "TRUE"


def _group(
    key: str, households: int, people: dict[str, int], name: str | None = None
) -> StatisticsGroup:
    return StatisticsGroup(
        key=key,
        name=name,
        households=households,
        people=sum(people.values()),
        **{status: people.get(status, 0) for status in STATUSES},
    )


async def read_statistics(
    session: AsyncSession, *, caller: Caller, region: str | None, by: Grouping
) -> Statistics:
    """Counts for the region prefix ``region`` (None: the whole country), grouped ``by``; a
    region wider than or outside the caller's regions is refused, never silently narrowed."""
    name = None
    if region is not None:
        name = (await read_region(session, code=region)).name
    if not caller.is_national and (region is None or not caller.may_see(region)):
        raise RegionOutsideScope(
            f"region {region or 'Indonesia'} is not inside your regions "
            f"({', '.join(caller.regions)}); ask for one of them or a region inside"
        )
    return await _compute(session, region=region, region_name=name, by=by)


async def _compute(
    session: AsyncSession, *, region: str | None, region_name: str | None, by: Grouping
) -> Statistics:
    """Counts for the region prefix ``region`` (None: the whole country), grouped ``by``."""
    params: dict[str, str] = {}
    if region:
        params["lo"], params["hi"] = code_range(region)
    if by == "decile":
        groups = await _by_decile(session, region, params)
    elif by == "status":
        groups = await _by_status(session, region, params)
    else:
        groups = await _by_region(session, region, params)
    households = (
        sum(g.households for g in groups)
        if by != "status"
        else await session.scalar(
            text(
                "SELECT count(*) FROM household "
                f"WHERE status = 'active' AND {_where('village_code', region)}"
            ),
            params,
        )
    )
    people = {status: sum(getattr(g, status) for g in groups) for status in STATUSES}
    return Statistics(
        region=region,
        region_name=region_name,
        by=by,
        total=Counts(households=households or 0, people=sum(people.values()), **people),
        groups=groups,
    )


async def _by_decile(
    session: AsyncSession, region: str | None, params: dict[str, str]
) -> list[StatisticsGroup]:
    households = await session.execute(
        text(
            "SELECT decile, count(*) FROM household "
            f"WHERE status = 'active' AND {_where('village_code', region)} GROUP BY decile"
        ),
        params,
    )
    people = await session.execute(
        text(
            "SELECT h.decile, p.status, count(*) FROM person AS p "
            "LEFT JOIN household AS h ON h.id = p.household_id AND h.status = 'active' "
            f"WHERE {_where('p.village_code', region)} GROUP BY h.decile, p.status"
        ),
        params,
    )
    keys = [str(d) for d in range(1, 11)] + [UNRANKED]
    household_counts = {_decile_key(d): n for d, n in households.all()}
    people_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for decile, status, n in people:
        people_counts[_decile_key(decile)][status] = n
    return [_group(key, household_counts.get(key, 0), people_counts[key]) for key in keys]


def _decile_key(decile: int | None) -> str:
    return UNRANKED if decile is None else str(decile)


async def _by_status(
    session: AsyncSession, region: str | None, params: dict[str, str]
) -> list[StatisticsGroup]:
    rows = await session.execute(
        text(
            "SELECT p.status, count(*), count(DISTINCT h.id) FROM person AS p "
            "LEFT JOIN household AS h ON h.id = p.household_id AND h.status = 'active' "
            f"WHERE {_where('p.village_code', region)} GROUP BY p.status"
        ),
        params,
    )
    found = {status: (people, households) for status, people, households in rows}
    return [
        _group(status, found.get(status, (0, 0))[1], {status: found.get(status, (0, 0))[0]})
        for status in STATUSES
    ]


async def _by_region(
    session: AsyncSession, region: str | None, params: dict[str, str]
) -> list[StatisticsGroup]:
    length = NEXT_LEVEL.get(len(region or ""))
    if length is None:
        raise NoLowerRegionLevel(
            f"{region} is a village: there is no region level below it to group by",
            field="query.by",
        )
    children: Sequence[tuple[str, str]] = (
        await session.execute(
            text(
                "SELECT code, name FROM region WHERE parent_code = :parent ORDER BY code"
                if region
                else "SELECT code, name FROM region WHERE level = 1 ORDER BY code"
            ),
            {"parent": region},
        )
    ).all()
    households = await session.execute(
        text(
            f"SELECT left(village_code, {length}), count(*) FROM household "
            f"WHERE status = 'active' AND {_where('village_code', region)} GROUP BY 1"
        ),
        params,
    )
    people = await session.execute(
        text(
            f"SELECT left(village_code, {length}), status, count(*) FROM person "
            f"WHERE {_where('village_code', region)} GROUP BY 1, 2"
        ),
        params,
    )
    household_counts: dict[str, int] = dict(households.all())
    people_counts: dict[str, dict[str, int]] = defaultdict(dict)
    for code, status, n in people:
        people_counts[code][status] = n
    return [
        _group(code, household_counts.get(code, 0), people_counts[code], name)
        for code, name in children
    ]
