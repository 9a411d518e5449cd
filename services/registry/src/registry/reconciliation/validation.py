"""Stages 2 and 3, validation set-based: one statement judges every staged row with the rules of
:mod:`registry.nik` written in SQL, refused rows are explained in the same words, and the
cross-row checks (household columns equal, one NIK per file, one living head) skip whole
households."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from registry.models import (
    DISABILITIES,
    EDUCATION,
    ELECTRICITY,
    FLOOR,
    RELATIONSHIPS,
    ROOF,
    SANITATION,
    STATUSES,
    WALL,
    WATER,
)
from registry.nik import future_date_problem, kk_problems, nik_problems
from registry.reconciliation.staging import COLUMNS, HOUSEHOLD_COLUMNS

__all__ = [
    "CHECK_DUPLICATE_NIK",
    "CHECK_HOUSEHOLD_COLUMNS",
    "CHECK_TWO_HEADS",
    "INVALID_ROWS",
    "MARK_BAD",
    "PERSON_FIELDS",
    "SKIP_HOUSEHOLDS",
    "SUSPECT_HOUSEHOLDS",
    "WHITESPACE",
    "explain_row",
    "iso_date_sql",
    "judge_sql",
    "kk_issue_dates",
    "kk_valid_sql",
    "nik_valid_sql",
    "past_days",
    "typed_rows_sql",
]


def _choices(name: str, values: Sequence[str]) -> tuple[frozenset[str], str]:
    return frozenset(values), f"{name} must be one of {', '.join(values)}"


_DECILES = tuple(str(d) for d in range(1, 11))
_ENUM_VALUES = {
    "floor": FLOOR,
    "wall": WALL,
    "roof": ROOF,
    "water": WATER,
    "sanitation": SANITATION,
    "electricity": ELECTRICITY,
    "relationship": RELATIONSHIPS,
    "status": STATUSES,
    "disability": DISABILITIES,
    "education": EDUCATION,
}
_ENUMS = {name: _choices(name, values) for name, values in _ENUM_VALUES.items()}
# What is trimmed around every field, in SQL and in Python alike.
WHITESPACE = " \t\n\r\x0b\x0c"


def _parse_date(value: str) -> date | None:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


_DISTRICTS = "SELECT code FROM region WHERE level = 3"
_VILLAGES = "SELECT code FROM region WHERE level = 4"
_ISSUE_DATES = "SELECT unnest($1::text[])"


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_in(expression: str, values: Iterable[str]) -> str:
    return f"{expression} IN ({', '.join(_sql_text(v) for v in values)})"


def _days_in_month_sql(year: str, month: str) -> str:
    leap = f"({year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    return (
        f"CASE {month} WHEN 2 THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        f"WHEN 4 THEN 30 WHEN 6 THEN 30 WHEN 9 THEN 30 WHEN 11 THEN 30 ELSE 31 END"
    )


def _is_date_sql(year: str, month: str, day: str) -> str:
    """Whether integers year-month-day make a date (years 1-9999, as Python's ``date``)."""
    return (
        f"({year} BETWEEN 1 AND 9999 AND {month} BETWEEN 1 AND 12 "
        f"AND {day} BETWEEN 1 AND {_days_in_month_sql(year, month)})"
    )


def _digits_sql(text_sql: str, count: int) -> str:
    """SQL boolean: ``text_sql`` is ``count`` ASCII digits (cheaper than a regular expression)."""
    return f"(octet_length({text_sql}) = {count} AND ltrim({text_sql}, '0123456789') = '')"


def iso_date_sql(text_sql: str) -> str:
    """SQL boolean: ``text_sql`` is a YYYY-MM-DD date (what `_parse_date` accepts)."""
    y, m, d = (f"substr({text_sql}, {a}, {n})::int" for a, n in ((1, 4), (6, 2), (9, 2)))
    return (
        f"CASE WHEN octet_length({text_sql}) = 10 "
        f"AND translate({text_sql}, '123456789', '000000000') = '0000-00-00' "
        f"THEN {_is_date_sql(y, m, d)} ELSE false END"
    )


def nik_valid_sql(nik: str, birth_date: str, sex: str, *, districts: str = _DISTRICTS) -> str:
    """SQL boolean: ``nik_problems(nik, birth_date=..., sex=...)`` is empty and the district
    exists, for ``birth_date`` a real date as YYYY-MM-DD text and ``sex`` M or F, as the import
    asks. The date part must then be the birth date itself: DDMMYY, 40 added to DD for women."""
    day, month, year2 = (f"substr({birth_date}, {a}, 2)" for a in (9, 6, 3))
    return (
        f"({_digits_sql(nik, 16)} "
        f"AND substr({nik}, 7, 6) = CASE WHEN {sex} = 'F' THEN ({day}::int + 40)::text "
        f"ELSE {day} END || {month} || {year2} "
        f"AND right({nik}, 4) <> '0000' AND left({nik}, 6) IN ({districts}))"
    )


@functools.lru_cache(maxsize=2)
def kk_issue_dates(today: date) -> list[str]:
    """Every DDMMYY that `kk_problems` accepts as a card's issue date on ``today``: the SQL
    check looks the KK's date part up in this list, so the rule lives in `registry.nik` only.
    (Cached per day; callers do not modify the list.)"""
    return [
        part
        for part in (
            f"{day:02d}{month:02d}{year2:02d}"
            for year2 in range(100)
            for month in range(1, 13)
            for day in range(1, 32)
        )
        if not kk_problems(f"000000{part}0001", today=today)
    ]


def kk_valid_sql(kk: str, *, issue_dates: str = _ISSUE_DATES, districts: str = _DISTRICTS) -> str:
    """SQL boolean: ``kk_problems(kk)`` is empty and the district exists; ``issue_dates`` is a
    subquery of the list `kk_issue_dates` (by default: passed as ``$1``)."""
    return (
        f"({_digits_sql(kk, 16)} AND substr({kk}, 7, 6) IN ({issue_dates}) "
        f"AND right({kk}, 4) <> '0000' AND left({kk}, 6) IN ({districts}))"
    )


# Dates from 1850 to today as YYYY-MM-DD (the list `past_days`, passed as ``$2``), looked up
# (hashed) instead of parsed; older ones are checked by arithmetic.
_DAYS = "SELECT unnest($2::text[])"
_DAYS_FROM = date(1850, 1, 1)


@functools.lru_cache(maxsize=2)
def past_days(today: date) -> list[str]:
    """Every day from 1850 to ``today`` as YYYY-MM-DD (cached per day, not to be modified)."""
    first = _DAYS_FROM.toordinal()
    return [date.fromordinal(n).isoformat() for n in range(first, today.toordinal() + 1)]


def _past_date_sql(text_sql: str) -> str:
    """SQL boolean: ``text_sql`` is a YYYY-MM-DD date not after today."""
    return (
        f"({text_sql} IN ({_DAYS}) OR ({text_sql} < '{_DAYS_FROM}' AND {iso_date_sql(text_sql)}))"
    )


def _row_valid_sql(*, trimmed: bool) -> str:
    """SQL boolean over the text columns of a staged row (``t``): the row is valid. Untrimmed
    (the first pass), a free-text field with spaces around it fails, for the second pass."""
    birth, death = "t.birth_date", "t.death_date"
    checks = [
        "t.fields = 21 AND NOT t.bad_text",
        kk_valid_sql("t.kk", issue_dates=_ISSUE_DATES, districts=_DISTRICTS),
        f"t.village_code IN ({_VILLAGES})",
        "length(t.address) <= 500",
        _sql_in("t.decile", ("", *_DECILES)),
        *(_sql_in(f"t.{name}", values) for name, values in _ENUM_VALUES.items()),
        "t.house_fit IN ('true', 'false')"
        if not trimmed
        else "lower(t.house_fit) IN ('true', 'false')",
        "t.sex IN ('M', 'F')",
        "length(t.full_name) BETWEEN 1 AND 200",
        "length(t.occupation) <= 100",
        _past_date_sql(birth),
        # Dates that passed the checks compare as text: no casts here.
        f"CASE WHEN t.status = 'deceased' THEN {_past_date_sql(death)} AND {death} >= {birth} "
        f"ELSE {death} = '' END",
        nik_valid_sql("t.nik", birth, "t.sex", districts=_DISTRICTS),
    ]
    if not trimmed:
        checks += [f"t.{c} = btrim(t.{c}, {_sql_text(WHITESPACE)})" for c in _FREE_TEXT]
    # CASE, not AND, so that a cast only ever meets text that was checked before it.
    verdict = "true"
    for check in reversed(checks):
        verdict = f"CASE WHEN {check} THEN {verdict} ELSE false END"
    return verdict


_FREE_TEXT = ("address", "full_name", "occupation")


def _typed_sql(column: str) -> str:
    """A text column of the staged row ``t`` as the registry stores it; NULL where the text is
    not of that type (only the verdict says whether the row is valid)."""
    value = f"t.{column}"
    if column in ("kk", "nik"):
        return f"CASE WHEN {_digits_sql(value, 16)} THEN {value} END"
    if column == "decile":
        return f"CASE WHEN {_sql_in(value, _DECILES)} THEN {value}::smallint END"
    if column == "house_fit":
        return f"(lower({value}) = 'true')"
    if column in ("birth_date", "death_date"):
        return f"CASE WHEN {_past_date_sql(value)} THEN {value}::date END"
    return value


# The household columns as one text to hash: every field but the last has a fixed vocabulary
# without the separator, and the free-text address comes last, so two different households can
# never make the same text.
_HASHED_HOUSEHOLD = ", ".join(
    f"coalesce(({_typed_sql(c)})::text, '')" if c in ("decile", "house_fit") else f"t.{c}"
    for c in (*(c for c in HOUSEHOLD_COLUMNS if c != "address"), "address")
)
# What the cross-row checks need of every row; the other columns are typed for the work only.
_ROW_COLUMNS = ("kk", "nik", "relationship", "status")


def judge_sql(raw: str, *, trimmed: bool) -> str:
    """Rows of the staged file ``raw`` (all of them; with ``trimmed``, those of lines ``$3``
    with every field trimmed) judged (``ok``), with whether the row differs from the registry
    (``differs``: a new KK or NIK, or any value; it means something only when ``ok``): the
    narrow table ``recon_row``. One level, so that the planner may spread it over workers
    (the verdict is written once, the typed values do not depend on it), and narrow, so that
    the workers hand little to the leader."""
    if trimmed:
        trim = ", ".join(
            f"btrim(coalesce({c}, ''), {_sql_text(WHITESPACE)}) AS {c}" for c in COLUMNS
        )
        source = (
            f"(SELECT line, fields, bad_text, {trim} FROM {raw} "
            "WHERE line = ANY($3::int[]) OFFSET 0) t"
        )
    else:
        source = f"{raw} t"
    typed = {c: _typed_sql(c) for c in COLUMNS}
    household = ", ".join(typed[c] for c in HOUSEHOLD_COLUMNS)
    person = ", ".join("h.id" if c == "household_id" else typed[c] for c in PERSON_FIELDS)
    return f"""
SELECT t.line, {", ".join(f"{typed[c]} AS {c}" for c in _ROW_COLUMNS)}, h.id AS household_id,
       {_row_valid_sql(trimmed=trimmed)} AS ok,
       hashtextextended(concat_ws(chr(31), {_HASHED_HOUSEHOLD}), 0) AS household_hash,
       h.id IS NULL OR p.id IS NULL
       OR {_tuple("h", HOUSEHOLD_COLUMNS)} IS DISTINCT FROM ({household})
       OR {_tuple("p", PERSON_FIELDS)} IS DISTINCT FROM ({person}) AS differs
FROM {source}
LEFT JOIN household h ON h.kk = t.kk
LEFT JOIN person p ON p.nik = t.nik
"""


def typed_rows_sql(raw: str, lines: str) -> str:
    """``recon_typed``: the valid rows whose lines ``lines`` selects, trimmed and typed."""
    trim = ", ".join(f"btrim({c}, {_sql_text(WHITESPACE)}) AS {c}" for c in COLUMNS)
    typed = {
        "decile": "nullif(t.decile, '')::smallint",
        "house_fit": "lower(t.house_fit) = 'true'",
        "birth_date": "t.birth_date::date",
        "death_date": "nullif(t.death_date, '')::date",
    }
    return f"""
CREATE TEMP TABLE recon_typed AS
SELECT t.line, {", ".join(f"{typed.get(c, f't.{c}')} AS {c}" for c in COLUMNS)}, true AS ok
FROM (SELECT line, {trim} FROM {raw} WHERE line IN ({lines}) OFFSET 0) t
"""


# The invalid rows, raw, with the registry facts `explain_row` needs to say why.
INVALID_ROWS = f"""
SELECT r.*,
       btrim(coalesce(r.village_code, ''), $2) IN ({_VILLAGES}) AS village_known,
       left(btrim(coalesce(r.nik, ''), $2), 6) IN ({_DISTRICTS}) AS nik_district_known,
       left(btrim(coalesce(r.kk, ''), $2), 6) IN ({_DISTRICTS}) AS kk_district_known
FROM {{raw}} r WHERE r.line = ANY($1::int[]) ORDER BY r.line
"""


def explain_row(row: Any, *, today: date) -> list[tuple[str, str]]:
    """Why a staged row is not valid: (field, reason) pairs, in a clerk's words."""
    problems: list[tuple[str, str]] = []
    if row["bad_text"]:
        problems.append(("", "the row is not valid UTF-8 text (or holds a NUL character)"))
    if row["fields"] != len(COLUMNS):
        problems.append(("", f"expected {len(COLUMNS)} fields, found {row['fields']}"))
        return problems
    (
        kk,
        village,
        address,
        decile_text,
        floor,
        wall,
        roof,
        water,
        sanitation,
        electricity,
        fit_text,
        nik,
        full_name,
        birth_text,
        sex,
        relationship,
        status,
        death_text,
        disability,
        education,
        occupation,
    ) = ((row[c] or "").strip(WHITESPACE) for c in COLUMNS)

    kk_found = kk_problems(kk, today=today)
    if not kk_found and not row["kk_district_known"]:
        kk_found = [f"KK district code {kk[:6]} does not exist"]
    problems.extend(("kk", p) for p in kk_found)
    if not row["village_known"]:
        problems.append(("village_code", f"{village!r} is not a Kemendagri village code"))
    if len(address) > 500:
        problems.append(("address", "address is longer than 500 characters"))
    if decile_text and decile_text not in _DECILES:
        problems.append(("decile", f"decile must be 1-10 or empty, found {decile_text!r}"))
    for name, value in (
        ("floor", floor),
        ("wall", wall),
        ("roof", roof),
        ("water", water),
        ("sanitation", sanitation),
        ("electricity", electricity),
        ("relationship", relationship),
        ("status", status),
        ("disability", disability),
        ("education", education),
    ):
        allowed, message = _ENUMS[name]
        if value not in allowed:
            problems.append((name, f"{message} (found {value[:40]!r})"))
    if fit_text.lower() not in ("true", "false"):
        problems.append(("house_fit", f"house_fit must be true or false, found {fit_text!r}"))

    birth = _parse_date(birth_text)
    if birth is None:
        problems.append(("birth_date", f"{birth_text[:20]!r} is not a date (YYYY-MM-DD)"))
    elif future := future_date_problem("birth date", birth, today=today):
        problems.append(("birth_date", future))
    if sex not in ("M", "F"):
        problems.append(("sex", f"sex must be M or F, found {sex[:10]!r}"))
    nik_found = nik_problems(nik, birth_date=birth, sex=sex if sex in ("M", "F") else None)
    if not nik_found and not row["nik_district_known"]:
        nik_found = [f"NIK district code {nik[:6]} does not exist"]
    problems.extend(("nik", p) for p in nik_found)
    if not full_name:
        problems.append(("full_name", "full_name is empty"))
    elif len(full_name) > 200:
        problems.append(("full_name", "full_name is longer than 200 characters"))

    if status == "deceased":
        death = _parse_date(death_text)
        if death is None:
            problems.append(
                (
                    "death_date",
                    "a deceased person needs a death_date (YYYY-MM-DD)"
                    if not death_text
                    else f"{death_text[:20]!r} is not a date (YYYY-MM-DD)",
                )
            )
        elif future := future_date_problem("death date", death, today=today):
            problems.append(("death_date", future))
        elif birth is not None and death < birth:
            problems.append(("death_date", "death date is before the birth date"))
    elif death_text:
        problems.append(("death_date", "death_date must be empty unless status is deceased"))
    if len(occupation) > 100:
        problems.append(("occupation", "occupation is longer than 100 characters"))
    return problems or [("", _UNEXPLAINED)]


# A row the SQL checks refused but `explain_row` finds nothing wrong with: the two disagree (a bug,
# which the tests exist to prevent); the row is still not applied, and says so.
_UNEXPLAINED = "the row did not pass the import's checks (please report this file to the registry)"
# Cross-row checks of the file; each inserts its errors and returns the lines it found bad.
# One pass over the KKs finds the suspects: household columns are compared through a hash of
# them computed while validating, and only the KKs whose rows disagree are compared column by
# column, to name the field; only KKs with two living heads are searched for the second.
SUSPECT_HOUSEHOLDS = """
SELECT kk, min(household_hash) <> max(household_hash) AS mixed,
       count(*) FILTER (WHERE relationship = 'head' AND status = 'alive') > 1 AS two_heads
FROM recon_row WHERE ok GROUP BY kk
HAVING min(household_hash) <> max(household_hash)
    OR count(*) FILTER (WHERE relationship = 'head' AND status = 'alive') > 1
"""
CHECK_HOUSEHOLD_COLUMNS = f"""
WITH first_row AS (
    SELECT DISTINCT ON (kk) * FROM recon_typed
    WHERE ok AND kk = ANY($2::text[]) ORDER BY kk, line
)
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, r.line, v.field,
       format('%s differs from line %s of the same KK (household columns must be equal on '
              'every member row)', v.field, f.line)
FROM recon_typed r
JOIN first_row f ON f.kk = r.kk AND f.line <> r.line
CROSS JOIN LATERAL (VALUES {
    ", ".join(f"('{c}', r.{c} IS DISTINCT FROM f.{c})" for c in HOUSEHOLD_COLUMNS)
}) AS v(field, differs)
WHERE r.ok AND v.differs
RETURNING line
"""
CHECK_DUPLICATE_NIK = """
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, d.line, 'nik',
       'the same NIK is also on line ' || array_to_string(d.others[1:5], ', ')
       || CASE WHEN cardinality(d.others) > 5 THEN ', ...' ELSE '' END
FROM (
    SELECT r.line, r.ok,
           array_remove(array_agg(r.line) OVER (PARTITION BY r.nik), r.line) AS others
    FROM recon_row r
    WHERE r.nik IN (
        SELECT nik FROM recon_row WHERE nik IS NOT NULL GROUP BY nik HAVING count(*) > 1
    )
) d
WHERE d.ok
RETURNING line
"""
CHECK_TWO_HEADS = """
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, h.line, 'relationship',
       format('a second living head of the same KK (the first is on line %s)', h.first_line)
FROM (
    SELECT line, first_value(line) OVER (PARTITION BY kk ORDER BY line) AS first_line
    FROM recon_row
    WHERE ok AND relationship = 'head' AND status = 'alive' AND kk = ANY($2::text[])
) h
WHERE h.line <> h.first_line
RETURNING line
"""
MARK_BAD = "UPDATE recon_row SET ok = false WHERE ok AND line = ANY($1::int[])"
# Every other row of a household that has a bad row is skipped, and says why.
SKIP_HOUSEHOLDS = """
WITH bad AS (
    SELECT kk, array_agg(line ORDER BY line) AS lines
    FROM recon_row WHERE NOT ok AND kk IS NOT NULL GROUP BY kk
), skipped AS (
    UPDATE recon_row r SET ok = false FROM bad
    WHERE r.ok AND r.kk = bad.kk
    RETURNING r.line, bad.lines
)
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, line, 'kk',
       'household skipped: line ' || array_to_string(lines[1:5], ', ')
       || CASE WHEN cardinality(lines) > 5 THEN ', ...' ELSE '' END
       || ' of the same KK is not valid'
FROM skipped
RETURNING line
"""
PERSON_FIELDS = (
    "full_name",
    "birth_date",
    "sex",
    "village_code",
    "household_id",
    "relationship",
    "status",
    "death_date",
    "disability",
    "education",
    "occupation",
)


def _tuple(alias: str, columns: Iterable[str]) -> str:
    return "(" + ", ".join(f"{alias}.{c}" for c in columns) + ")"
