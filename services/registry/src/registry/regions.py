"""The Kemendagri region codes shipped with the registry (data/wilayah, MIT, see SOURCE.md).

:func:`region_rows` feeds the migration that loads the ``region`` table; :func:`villages_in`
reads the same files for the demo generator; the ``list_*`` functions are the read queries of
the regions API (they take the session and never commit).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import Region

__all__ = [
    "LEVEL_LENGTHS",
    "WILAYAH_DIR",
    "code_range",
    "list_children",
    "list_provinces",
    "region_rows",
    "villages_in",
]

WILAYAH_DIR = Path(__file__).parent / "data" / "wilayah"

# Code length of each level: province 2, regency/city 4, district 6, village 10.
LEVEL_LENGTHS = {1: 2, 2: 4, 3: 6, 4: 10}

# file, level, parent column (parents come first so the foreign key holds row by row)
_LEVELS = [
    ("provinces.csv", 1, None),
    ("regencies.csv", 2, "province_code"),
    ("districts.csv", 3, "regency_code"),
    ("villages.csv", 4, "district_code"),
]


def region_rows() -> Iterator[dict[str, object]]:
    for filename, level, parent_column in _LEVELS:
        with open(WILAYAH_DIR / filename, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield {
                    "code": row["code"],
                    "level": level,
                    "parent_code": row[parent_column] if parent_column else None,
                    "name": row["name"],
                }


def villages_in(prefix: str) -> list[tuple[str, str]]:
    """(code, name) of every village whose code starts with ``prefix``, in code order."""
    with open(WILAYAH_DIR / "villages.csv", newline="", encoding="utf-8") as handle:
        found = [(row["code"], row["name"]) for row in csv.DictReader(handle)]
    return sorted((code, name) for code, name in found if code.startswith(prefix))


def code_range(prefix: str, length: int = 10) -> tuple[str, str]:
    """Inclusive bounds of the ``length``-digit codes under ``prefix``, for an index range scan.

    Equal-length digit strings sort the same under every collation, unlike ``LIKE 'p%'``,
    which only uses a b-tree under the C collation.
    """
    pad = length - len(prefix)
    return prefix + "0" * pad, prefix + "9" * pad


async def list_provinces(session: AsyncSession) -> Sequence[Region]:
    result = await session.scalars(select(Region).where(Region.level == 1).order_by(Region.code))
    return result.all()


async def list_children(
    session: AsyncSession, *, parent: Region, limit: int, after: str | None = None
) -> tuple[Sequence[Region], str | None]:
    """One page of ``parent``'s children in code order and the cursor of the next page.

    Keyset pagination: the cursor is the last code served, so a page costs one index range scan
    however deep the caller pages, and a code is never served twice or skipped.
    """
    query = select(Region).where(Region.parent_code == parent.code)
    if after is not None:
        query = query.where(Region.code > after)
    rows = (await session.scalars(query.order_by(Region.code).limit(limit + 1))).all()
    if len(rows) > limit:
        return rows[:limit], rows[limit - 1].code
    return rows, None
