"""The Kemendagri region codes shipped with the registry (data/wilayah, MIT, see SOURCE.md).

:func:`region_rows` feeds the migration that loads the ``region`` table; :func:`villages_in`
reads the same files for the demo generator; :func:`code_range` turns a code prefix into an
index range.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "LEVEL_LENGTHS",
    "WILAYAH_DIR",
    "code_range",
    "region_rows",
    "villages_in",
]

WILAYAH_DIR = Path(__file__).parent.parent / "data" / "wilayah"

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
