"""The Kemendagri region codes shipped with the registry (data/wilayah, MIT, see SOURCE.md)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

__all__ = ["WILAYAH_DIR", "region_rows"]

WILAYAH_DIR = Path(__file__).parent / "data" / "wilayah"

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
