"""Working days in Indonesia, for SLA deadlines and programme time-outs.

A complaint must be answered within 5 working days, a referral within its own number of working
days (LAPOR! counts SLAs in working days), so every service needs the same answer to "is this day
a working day?". The civil service works Monday to Friday; the days off on top of the weekend are
the national public holidays (*hari libur nasional*) and the collective leave (*cuti bersama*)
that each year's joint ministerial decree (SKB 3 Menteri) sets. Both come from the `holidays`
package's Indonesia calendar (its ``PUBLIC`` and ``GOVERNMENT`` categories; the latter is the cuti
bersama), so no holiday table is written here.

Decrees change during the year (a day moved, a cuti bersama added, a regional Pilkada voting
day), faster than a library release, so an operator adds and removes days per year with
*overrides*, loaded from a JSON file (:func:`load_overrides`) or from a mapping of the same shape
(:func:`parse_overrides`, for a service that keeps them in its own database)::

    {
      "2026": {
        "note": "SKB 3 Menteri amendment of ...",
        "add": {"2026-11-27": "Hari Pemilihan Kepala Daerah"},
        "remove": ["2026-12-24"]
      }
    }

``add`` maps a date to its name (it wins over the library's name for that date); ``remove`` lists
library holidays that are working days after all; ``note`` (optional) says which decree. Every
date must be in its year's key.

Counting convention. ``add_working_days(start, n)`` is the n-th working day *after* ``start``
(``start`` itself never counts: a complaint filed on a Tuesday with 1 working day is due on
Wednesday); ``n = 0`` gives ``start`` if it is a working day, else the next working day; a negative
``n`` is refused. ``working_days_between(start, end)`` counts the working days in ``(start, end]``
(negative when ``end`` is before ``start``), so ``working_days_between(s, add_working_days(s, n))
== n`` for every ``n >= 1``.

Days are local days: a timestamp belongs to the day of the regency's time zone (WIB, WITA or
WIT), so every function also takes an aware ``datetime`` together with ``zone=``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import holidays
from holidays.constants import GOVERNMENT, PUBLIC

__all__ = [
    "WIB",
    "WIT",
    "WITA",
    "Holiday",
    "OverrideError",
    "WorkingCalendar",
    "YearOverrides",
    "load_overrides",
    "local_day",
    "parse_overrides",
]

WIB = ZoneInfo("Asia/Jakarta")
"""Western Indonesia Time (UTC+7): Sumatra, Java, West and Central Kalimantan."""
WITA = ZoneInfo("Asia/Makassar")
"""Central Indonesia Time (UTC+8): Bali, Nusa Tenggara, Sulawesi, East, South, North Kalimantan."""
WIT = ZoneInfo("Asia/Jayapura")
"""Eastern Indonesia Time (UTC+9): Maluku and Papua."""

Source = Literal["library", "override"]
DayLike = date | datetime


class OverrideError(ValueError):
    """An overrides file or mapping is malformed; the message names the file, line or key."""


@dataclass(frozen=True, slots=True)
class Holiday:
    """A day off on top of the weekend, and where it comes from."""

    date: date
    name: str
    source: Source


@dataclass(frozen=True, slots=True)
class YearOverrides:
    """One year's operator changes to the library's holidays."""

    add: Mapping[date, str] = field(default_factory=dict)
    remove: frozenset[date] = frozenset()
    note: str = ""


def local_day(moment: DayLike, zone: ZoneInfo | str | None = None) -> date:
    """The calendar day of ``moment``: a ``date`` as it is, an aware ``datetime`` in ``zone``.

    A naive ``datetime``, or a ``datetime`` without ``zone``, is refused: which day 23:30 UTC
    falls on depends on the regency (it is already the next day in WIB).
    """
    if not isinstance(moment, datetime):
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: give an aware datetime")
    if zone is None:
        raise ValueError("a datetime needs zone= (WIB, WITA or WIT) to say which day it is")
    return moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone).date()


class WorkingCalendar:
    """Indonesian working days: Monday-Friday less the library's holidays, with overrides.

    Immutable; build one per process (or per overrides version) and share it.
    """

    def __init__(
        self, overrides: Mapping[int, YearOverrides] | None = None, *, language: str = "id"
    ) -> None:
        self._overrides = dict(overrides or {})
        self._language = language
        self._years: dict[int, dict[date, Holiday]] = {}
        for year in self._overrides:  # a stale "remove" should fail at start-up, not at a deadline
            self._holidays_of(year)

    @classmethod
    def from_file(cls, path: str | Path, *, language: str = "id") -> WorkingCalendar:
        """A calendar with the overrides of a JSON file (see the module docstring)."""
        return cls(load_overrides(path), language=language)

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, language: str = "id") -> WorkingCalendar:
        """A calendar with overrides given as the parsed JSON shape (e.g. from a database)."""
        return cls(parse_overrides(data), language=language)

    def holidays_in(self, year: int) -> list[Holiday]:
        """The year's days off other than plain weekends, in date order."""
        return sorted(self._holidays_of(year).values(), key=lambda holiday: holiday.date)

    def holiday_name(self, day: DayLike, *, zone: ZoneInfo | str | None = None) -> str | None:
        """The holiday's name, or ``None`` for a working day or a plain weekend."""
        local = local_day(day, zone)
        holiday = self._holidays_of(local.year).get(local)
        return holiday.name if holiday else None

    def is_working_day(self, day: DayLike, *, zone: ZoneInfo | str | None = None) -> bool:
        """Monday to Friday and not a holiday."""
        return self._is_working(local_day(day, zone))

    def add_working_days(
        self, start: DayLike, n: int, *, zone: ZoneInfo | str | None = None
    ) -> date:
        """The n-th working day after ``start`` (n = 0: ``start`` or the next working day)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        day = local_day(start, zone)
        if n == 0:
            while not self._is_working(day):
                day += timedelta(days=1)
            return day
        while n:
            day += timedelta(days=1)
            if self._is_working(day):
                n -= 1
        return day

    def working_days_between(
        self, start: DayLike, end: DayLike, *, zone: ZoneInfo | str | None = None
    ) -> int:
        """The number of working days in ``(start, end]``; negative if ``end`` is earlier."""
        first, last = local_day(start, zone), local_day(end, zone)
        if last < first:
            return -self.working_days_between(last, first)
        days = (first + timedelta(days=offset) for offset in range(1, (last - first).days + 1))
        return sum(1 for day in days if self._is_working(day))

    def _is_working(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self._holidays_of(day.year)

    def _holidays_of(self, year: int) -> dict[date, Holiday]:
        if year not in self._years:
            self._years[year] = self._build_year(year)
        return self._years[year]

    def _build_year(self, year: int) -> dict[date, Holiday]:
        library = holidays.country_holidays(
            "ID", years=year, categories=(PUBLIC, GOVERNMENT), language=self._language
        )
        days = {
            day: Holiday(day, name, "library")
            for day, name in library.items()
            if isinstance(day, date)
        }
        overrides = self._overrides.get(year, YearOverrides())
        for day in sorted(overrides.remove):
            if days.pop(day, None) is None:
                raise OverrideError(
                    f"{year}.remove: {day.isoformat()} is not a holiday in the holidays library"
                )
        for day, name in overrides.add.items():
            days[day] = Holiday(day, name, "override")
        return days


def load_overrides(path: str | Path) -> dict[int, YearOverrides]:
    """Read an overrides JSON file; errors name the file and the line or key."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OverrideError(f"{path}: cannot read overrides: {exc.strerror}") from exc
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise OverrideError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
    except _DuplicateKey as exc:
        raise OverrideError(f"{path}: duplicate key {exc.args[0]!r}") from exc
    if not isinstance(data, dict):
        raise OverrideError(f"{path}: the top level must be an object of years")
    return parse_overrides(data, origin=str(path))


def parse_overrides(
    data: Mapping[str, object], *, origin: str = "overrides"
) -> dict[int, YearOverrides]:
    """Validate the overrides shape (see the module docstring) into ``{year: YearOverrides}``."""
    result: dict[int, YearOverrides] = {}
    for key, entry in data.items():
        where = f"{origin}: {key}"
        if not (isinstance(key, str) and len(key) == 4 and key.isdigit()):
            raise OverrideError(f'{where}: a year key must be four digits, e.g. "2026"')
        year = int(key)
        if not isinstance(entry, Mapping):
            raise OverrideError(f"{where}: must be an object with add, remove, note")
        unknown = sorted(set(entry) - {"add", "remove", "note"})
        if unknown:
            raise OverrideError(f"{where}: unknown key {unknown[0]!r} (allowed: add, remove, note)")
        add_in = entry.get("add", {})
        remove_in = entry.get("remove", [])
        note = entry.get("note", "")
        if not isinstance(add_in, Mapping):
            raise OverrideError(f"{where}.add: must be an object of date: name")
        if not isinstance(remove_in, list):
            raise OverrideError(f"{where}.remove: must be a list of dates")
        if not isinstance(note, str):
            raise OverrideError(f"{where}.note: must be a string")
        add: dict[date, str] = {}
        for raw, name in add_in.items():
            day = _parse_day(raw, year, f"{where}.add[{raw!r}]")
            if not isinstance(name, str) or not name.strip():
                raise OverrideError(f"{where}.add[{raw!r}]: the name must be a non-empty string")
            add[day] = name.strip()
        remove = frozenset(
            _parse_day(raw, year, f"{where}.remove[{index}]") for index, raw in enumerate(remove_in)
        )
        both = sorted(remove & add.keys())
        if both:
            raise OverrideError(f"{where}: {both[0].isoformat()} is both added and removed")
        result[year] = YearOverrides(add=add, remove=remove, note=note)
    return result


def _parse_day(raw: object, year: int, where: str) -> date:
    if not isinstance(raw, str):
        raise OverrideError(f"{where}: a date must be a string YYYY-MM-DD")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise OverrideError(f"{where}: {raw!r} is not a date YYYY-MM-DD") from None
    if len(raw) != 10 or day.year != year:
        raise OverrideError(f"{where}: {raw!r} must be a YYYY-MM-DD date in {year}")
    return day


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result
