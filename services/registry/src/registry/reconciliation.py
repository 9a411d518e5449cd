"""BPS reconciliation: apply a DTSEN snapshot or delta file to the registry, in bulk.

RECONCILIATION.md beside the service describes the file format and the semantics; this module is
the pipeline behind ``python -m registry import`` and ``POST /v1/imports``:

1. **Stage.** The file goes as text into an unlogged table with PostgreSQL's own CSV parser
   (``COPY ... FROM STDIN (FORMAT csv)``, no Python per row). A file COPY refuses (a row with
   the wrong number of fields, a blank line, text that is not UTF-8) or whose records are not
   one per physical line (a quoted line break) is staged again through Python's csv module,
   which numbers the physical lines and flags such rows.
2. **Validate, set-based.** One statement judges every row (``_judge_sql``, which PostgreSQL
   may run with parallel workers, hence the unlogged table): the NIK and KK rules of
   :mod:`registry.nik` (the KK issue dates it accepts are computed from
   :func:`registry.nik.kk_problems` itself), the village and district codes against the region
   table, dates, enumerations, lengths. The same statement joins the registry and marks which
   rows differ from it. Rows it refuses are judged again with every field trimmed; those still
   refused are explained by ``_explain`` with the words of :mod:`registry.nik` and go to
   ``import_error``. Tests compare the SQL verdicts with :mod:`registry.nik` on the same cases.
   Only the rows of households that differ are then typed in full (``recon_typed``).
3. **Cross-row checks, set-based.** Household columns must be equal on every member row, a NIK
   may appear once per file, a KK has at most one living head, and a household must not end up
   with two living heads in the registry. A household with any bad row is skipped whole: its
   other rows are reported as skipped, so nothing of it is half-applied.
4. **The work, and batches.** The comparison with the registry gives the households
   where anything differs (new card or person, changed value, a member on another card; in a
   snapshot, a member no longer listed): only those are locked and written, the other rows are
   counted unchanged. The work is packed into batches of about ``batch_size`` rows, households
   never split; households linked by a person moving between them share a batch, so a move is
   applied at once on both sides.
5. **Apply, one transaction per batch.** Lock the rows, compute the difference against the
   registry into a plan table, then INSERT/UPDATE set-based. Each data-modifying statement also
   inserts the outbox rows of what it changed (``INSERT INTO outbox_event ... SELECT`` from its
   ``RETURNING`` rows, the CloudEvents envelope built with ``jsonb_build_object``), so an event
   exists exactly when its change committed. The import's counters are updated in the same
   transaction. A batch that fails rolls back whole; its rows are reported with the database's
   reason and the import goes on with the next batch.

Only rows that really differ are written, so importing the same file again changes nothing and
emits nothing. Business code here never commits a caller's session: the pipeline owns one
dedicated asyncpg connection and its transactions (the API only queues the import).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import hashlib
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from registry import events
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
    ImportBatch,
    ImportRowError,
)
from registry.nik import future_date_problem, kk_problems, nik_problems
from registry.settings import RegistrySettings
from shared.db import session_scope, sync_url
from shared.errors import Forbidden, NotFound, UnprocessableContent
from shared.jobs import Job, JobKind
from shared.observability import current_traceparent

__all__ = [
    "COLUMNS",
    "IMPORT_JOB",
    "ImportNotFound",
    "ImportSummary",
    "ImportsAreNational",
    "InvalidImportFile",
    "Mode",
    "Progress",
    "check_header",
    "errors_query",
    "execute_import",
    "file_sha256",
    "get_import",
    "import_file",
    "import_job",
    "queue_import",
    "render_error_rows",
    "stage_upload",
    "write_error_report",
]

log = logging.getLogger("registry.reconciliation")

Mode = Literal["delta", "snapshot"]
# (phase, done, total): "validating" counts bytes of the file, "applying" counts rows.
Progress = Callable[[str, int, int], None]

COLUMNS = (
    "kk",
    "village_code",
    "address",
    "decile",
    "floor",
    "wall",
    "roof",
    "water",
    "sanitation",
    "electricity",
    "house_fit",
    "nik",
    "full_name",
    "birth_date",
    "sex",
    "relationship",
    "status",
    "death_date",
    "disability",
    "education",
    "occupation",
)
HOUSEHOLD_COLUMNS = COLUMNS[1:11]  # equal on every member row of one KK (kk itself is the key)
_ERROR_COLUMNS = ("batch_id", "line", "field", "reason")
_CHUNK_ROWS = 10_000  # rows per COPY when Python reads the file
_COPY_BLOCK = 1 << 20  # bytes per COPY message when PostgreSQL parses it
_MAX_REASON = 500


class ImportNotFound(NotFound):
    type = "import-not-found"
    title = "Import not found"


class ImportsAreNational(Forbidden):
    type = "imports-are-national"
    title = "Reconciliation imports need a national token (no regions claim)"


class InvalidImportFile(UnprocessableContent):
    type = "invalid-import-file"
    title = "The file is not a DTSEN CSV"


# ---------------------------------------------------------------------------- validation


def check_header(first_line: bytes) -> str | None:
    """What is wrong with the file's first line (``None`` when it is the expected header)."""
    try:
        text = first_line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "the file is not UTF-8"
    if not text.strip():
        return "the file is empty (it needs a header row: " + ",".join(COLUMNS) + ")"
    header = [name.strip().lower() for name in next(csv.reader([text]))]
    if tuple(header) != COLUMNS:
        return f"the header must be {','.join(COLUMNS)}, found {','.join(header)[:300]}"
    return None


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
_WHITESPACE = " \t\n\r\x0b\x0c"


def _parse_date(value: str) -> date | None:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


# ---------------------------------------------------------------------------- validation in SQL
#
# Every row is checked by PostgreSQL, set-based, in the statement that types it (`_judge_sql`).
# The expressions below decide *whether* a row is valid; the few invalid rows are then explained
# in Python by `_explain`, with the words of `registry.nik` (tests/test_reconciliation.py runs both
# on the same tables of cases, so the two cannot drift apart).


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
        checks += [f"t.{c} = btrim(t.{c}, {_sql_text(_WHITESPACE)})" for c in _FREE_TEXT]
    # CASE, not AND, so that a cast only ever meets text that was checked before it.
    verdict = "true"
    for check in reversed(checks):
        verdict = f"CASE WHEN {check} THEN {verdict} ELSE false END"
    return verdict


_FREE_TEXT = ("address", "full_name", "occupation")

# The file as text. Not a temporary table: PostgreSQL's parallel workers cannot read those, and
# judging a large file is the one step where a second core pays. Its name carries the import id;
# an import drops it when it ends, and the next import drops those a crash left behind.
_RAW_DDL = f"""
CREATE UNLOGGED TABLE {{raw}} (
    {", ".join(f"{c} text" for c in COLUMNS)},
    line integer GENERATED BY DEFAULT AS IDENTITY (START WITH 2),
    fields smallint NOT NULL DEFAULT {len(COLUMNS)},
    bad_text boolean NOT NULL DEFAULT false
)
"""
_RAW_COLUMNS = (*COLUMNS, "line", "fields", "bad_text")
_RAW_PREFIX = "recon_raw_"
_STALE_RAW_TABLES = f"""
SELECT c.relname FROM pg_class c
WHERE c.relkind = 'r' AND c.relpersistence = 'u' AND c.relnamespace = current_schema()::regnamespace
  AND c.relname LIKE '{_RAW_PREFIX.replace("_", "@_")}%' ESCAPE '@'
  AND NOT EXISTS (
    SELECT 1 FROM import_batch b
    WHERE b.status IN ('queued', 'running')
      AND c.relname = '{_RAW_PREFIX}' || replace(b.id::text, '-', '')
  )
"""


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


def _judge_sql(raw: str, *, trimmed: bool) -> str:
    """Rows of the staged file ``raw`` (all of them; with ``trimmed``, those of lines ``$3``
    with every field trimmed) judged (``ok``), with whether the row differs from the registry
    (``differs``: a new KK or NIK, or any value; it means something only when ``ok``): the
    narrow table ``recon_row``. One level, so that the planner may spread it over workers
    (the verdict is written once, the typed values do not depend on it), and narrow, so that
    the workers hand little to the leader."""
    if trimmed:
        trim = ", ".join(
            f"btrim(coalesce({c}, ''), {_sql_text(_WHITESPACE)}) AS {c}" for c in COLUMNS
        )
        source = (
            f"(SELECT line, fields, bad_text, {trim} FROM {raw} "
            "WHERE line = ANY($3::int[]) OFFSET 0) t"
        )
    else:
        source = f"{raw} t"
    typed = {c: _typed_sql(c) for c in COLUMNS}
    household = ", ".join(typed[c] for c in HOUSEHOLD_COLUMNS)
    person = ", ".join("h.id" if c == "household_id" else typed[c] for c in _PERSON_FIELDS)
    return f"""
SELECT t.line, {", ".join(f"{typed[c]} AS {c}" for c in _ROW_COLUMNS)}, h.id AS household_id,
       {_row_valid_sql(trimmed=trimmed)} AS ok,
       hashtextextended(concat_ws(chr(31), {_HASHED_HOUSEHOLD}), 0) AS household_hash,
       h.id IS NULL OR p.id IS NULL
       OR {_tuple("h", HOUSEHOLD_COLUMNS)} IS DISTINCT FROM ({household})
       OR {_tuple("p", _PERSON_FIELDS)} IS DISTINCT FROM ({person}) AS differs
FROM {source}
LEFT JOIN household h ON h.kk = t.kk
LEFT JOIN person p ON p.nik = t.nik
"""


def _typed_rows_sql(raw: str, lines: str) -> str:
    """``recon_typed``: the valid rows whose lines ``lines`` selects, trimmed and typed."""
    trim = ", ".join(f"btrim({c}, {_sql_text(_WHITESPACE)}) AS {c}" for c in COLUMNS)
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


# The invalid rows, raw, with the registry facts `_explain` needs to say why.
_INVALID_ROWS = f"""
SELECT r.*,
       btrim(coalesce(r.village_code, ''), $2) IN ({_VILLAGES}) AS village_known,
       left(btrim(coalesce(r.nik, ''), $2), 6) IN ({_DISTRICTS}) AS nik_district_known,
       left(btrim(coalesce(r.kk, ''), $2), 6) IN ({_DISTRICTS}) AS kk_district_known
FROM {{raw}} r WHERE r.line = ANY($1::int[]) ORDER BY r.line
"""


def _explain(row: Any, *, today: date) -> list[tuple[str, str]]:
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
    ) = ((row[c] or "").strip(_WHITESPACE) for c in COLUMNS)

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


# A row the SQL checks refused but `_explain` finds nothing wrong with: the two disagree (a bug,
# which the tests exist to prevent); the row is still not applied, and says so.
_UNEXPLAINED = "the row did not pass the import's checks (please report this file to the registry)"


# ---------------------------------------------------------------------------- reading the file


class _FileReader:
    """The slow path of staging, for files PostgreSQL's COPY cannot take as they are (a field
    holding a line break, a blank line, a row with the wrong number of fields, text that is not
    UTF-8): Python's csv module reads them and numbers the physical lines."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self.bytes_read = 0
        self._physical_line = 0
        self._bad_lines: set[int] = set()  # not UTF-8, or holding a NUL
        self._rows = csv.reader(self._lines())
        next(self._rows, None)  # the header, checked already
        self._last_line = self._rows.line_num

    def _lines(self) -> Iterator[str]:
        for raw in self._handle:
            self.bytes_read += len(raw)
            self._physical_line += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad_lines.add(self._physical_line)
                text = raw.decode("utf-8", "replace")
            if "\x00" in text:
                self._bad_lines.add(self._physical_line)
                text = text.replace("\x00", "\ufffd")
            yield text

    def next_chunk(self, size: int = _CHUNK_ROWS) -> list[tuple[Any, ...]]:
        records: list[tuple[Any, ...]] = []
        width = len(COLUMNS)
        for fields in self._rows:
            line = self._last_line + 1
            self._last_line = self._rows.line_num
            if not fields or fields == [""]:
                continue  # blank line
            bad_text = bool(self._bad_lines) and any(
                n in self._bad_lines for n in range(line, self._last_line + 1)
            )
            padded = (fields + [None] * width)[:width]
            records.append((*padded, line, len(fields), bad_text))
            if len(records) >= size:
                break
        return records


# ---------------------------------------------------------------------------- SQL

# Cross-row checks of the file; each inserts its errors and returns the lines it found bad.
# One pass over the KKs finds the suspects: household columns are compared through a hash of
# them computed while validating, and only the KKs whose rows disagree are compared column by
# column, to name the field; only KKs with two living heads are searched for the second.
_SUSPECT_HOUSEHOLDS = """
SELECT kk, min(household_hash) <> max(household_hash) AS mixed,
       count(*) FILTER (WHERE relationship = 'head' AND status = 'alive') > 1 AS two_heads
FROM recon_row WHERE ok GROUP BY kk
HAVING min(household_hash) <> max(household_hash)
    OR count(*) FILTER (WHERE relationship = 'head' AND status = 'alive') > 1
"""

_CHECK_HOUSEHOLD_COLUMNS = f"""
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

_CHECK_DUPLICATE_NIK = """
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

_CHECK_TWO_HEADS = """
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

_MARK_BAD = "UPDATE recon_row SET ok = false WHERE ok AND line = ANY($1::int[])"

# Every other row of a household that has a bad row is skipped, and says why.
_SKIP_HOUSEHOLDS = """
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

_PERSON_FIELDS = (
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


# The work: households of the file where anything differs from the registry (a new card or
# person, a changed value, a person on another card; in a snapshot, a living member who is
# nowhere in the file). Every other valid row is unchanged and needs no lock and no write.
_WORK_DDL = """
CREATE TEMP TABLE recon_work AS
SELECT kk FROM recon_row WHERE ok AND differs
UNION
SELECT f.kk
FROM (SELECT DISTINCT kk, household_id FROM recon_row WHERE $1 AND ok) f
JOIN person p ON p.household_id = f.household_id
WHERE p.status = 'alive' AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik)
"""

_DROP_SKIPPED_WORK = """
DELETE FROM recon_work w WHERE NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.kk = w.kk AND r.ok)
"""

# A living head in the registry whom the file leaves in place (not in the file's valid rows and,
# in a snapshot, not about to be moved out for being absent) clashes with the file's new head.
_CHECK_HEAD_IN_REGISTRY = """
WITH new_heads AS MATERIALIZED (  -- the file's living heads of the work (a few thousand)
    SELECT f.line, f.kk, f.nik FROM recon_row f
    WHERE f.ok AND f.relationship = 'head' AND f.status = 'alive'
      AND f.kk IN (SELECT kk FROM recon_work)
), heads AS MATERIALIZED (  -- the registry's living head beside each of them
    SELECT n.line, p.nik
    FROM new_heads n
    JOIN household h ON h.kk = n.kk
    JOIN person p ON p.household_id = h.id AND p.relationship = 'head' AND p.status = 'alive'
    WHERE p.nik <> n.nik
), in_file AS (  -- few heads: look them up in the file, not the file up in them
    SELECT r.nik, bool_or(r.ok) AS valid FROM recon_row r
    WHERE r.nik IN (SELECT nik FROM heads) GROUP BY r.nik
)
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, heads.line, 'relationship',
       'the KK already has a living head in the registry whom this file does not change; '
       'give that member''s new relationship or status in the same file'
FROM heads LEFT JOIN in_file ON in_file.nik = heads.nik
WHERE NOT coalesce(in_file.valid, false) AND (NOT $2 OR in_file.nik IS NOT NULL)
RETURNING line
"""

_HOUSEHOLDS_DDL = f"""
CREATE TEMP TABLE recon_household AS
SELECT DISTINCT ON (r.kk) r.kk, r.line AS first_line,
       {", ".join(f"r.{c}" for c in HOUSEHOLD_COLUMNS)},
       count(*) OVER (PARTITION BY r.kk) AS rows, 0 AS batch_no
FROM recon_typed r WHERE r.ok AND r.kk IN (SELECT kk FROM recon_work)
ORDER BY r.kk, r.line
"""

# People who move between two households of the work tie the two into one batch.
_MOVE_EDGES = """
SELECT DISTINCT r.kk, old.kk AS old_kk
FROM recon_row r
JOIN recon_household rh ON rh.kk = r.kk
JOIN person p ON p.nik = r.nik
JOIN household old ON old.id = p.household_id
JOIN recon_household oh ON oh.kk = old.kk
WHERE r.ok AND old.kk <> r.kk
"""

_WORK_ROWS_DDL = """
CREATE TEMP TABLE recon_work_row AS
SELECT r.*, h.batch_no FROM recon_typed r JOIN recon_household h ON h.kk = r.kk
WHERE r.ok ORDER BY h.batch_no, r.line
"""

_SOURCE = f"'{events.SOURCE}'"


def _outbox(changes: str) -> str:
    """Tail of a statement: outbox rows for the CTE ``changes`` (topic, id, type, data)."""
    return f"""
, ev AS (
    INSERT INTO outbox_event (event_id, topic, key, event_type, envelope)
    SELECT e.event_id, e.topic, e.key, e.type, jsonb_build_object(
        'id', e.event_id, 'source', {_SOURCE}, 'type', e.type, 'specversion', '1.0',
        'time', to_char(statement_timestamp() AT TIME ZONE 'UTC',
                        'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'subject', e.key, 'datacontenttype', 'application/json', 'traceparent', $1::text,
        'data', e.data)
    FROM (SELECT gen_random_uuid()::text AS event_id, c.topic, c.id::text AS key, c.type, c.data
          FROM {changes} c) e
    RETURNING event_type
)
SELECT event_type, count(*)::int AS n FROM ev GROUP BY event_type
"""


def _household_data(alias: str) -> str:
    columns: tuple[str, ...] = ("village_code", "decile", "house_fit", "floor", "wall", "roof")
    columns += ("water",)
    columns += ("sanitation", "electricity", "status", "version")
    pairs = ", ".join(f"'{c}', {alias}.{c}" for c in columns)
    return f"jsonb_build_object('household_id', {alias}.id, {pairs})"


def _person_data(alias: str) -> str:
    columns: tuple[str, ...] = ("household_id", "village_code", "birth_date", "sex", "status")
    columns += ("relationship",)
    columns += ("disability", "version")
    pairs = ", ".join(f"'{c}', {alias}.{c}" for c in columns)
    return f"jsonb_build_object('person_id', {alias}.id, {pairs})"


_LOCK_HOUSEHOLDS = """
SELECT 1 FROM household h JOIN recon_household r ON r.kk = h.kk
WHERE r.batch_no = $1 ORDER BY h.id FOR UPDATE OF h
"""

_HOUSEHOLD_DIFF = " ".join(
    f"CASE WHEN h.{c} IS DISTINCT FROM r.{c} THEN '{c}' END," for c in HOUSEHOLD_COLUMNS
).rstrip(",")

_HOUSEHOLD_PLAN = f"""
CREATE TEMP TABLE recon_household_plan ON COMMIT DROP AS
SELECT coalesce(h.id, gen_random_uuid()) AS id, h.id IS NULL AS is_new, r.kk,
       {", ".join(f"r.{c}" for c in HOUSEHOLD_COLUMNS)}, h.decile AS old_decile,
       CASE WHEN h.id IS NULL THEN ARRAY[]::text[]
            ELSE array_remove(ARRAY[{_HOUSEHOLD_DIFF}], NULL) END AS changed
FROM recon_household r LEFT JOIN household h ON h.kk = r.kk
WHERE r.batch_no = $1
"""

_INSERT_HOUSEHOLDS = f"""
WITH ins AS (
    INSERT INTO household (id, kk, {", ".join(HOUSEHOLD_COLUMNS)})
    SELECT id, kk, {", ".join(HOUSEHOLD_COLUMNS)} FROM recon_household_plan WHERE is_new
    RETURNING *
), changes AS (
    SELECT '{events.HOUSEHOLD_TOPIC}' AS topic, i.id, '{events.HOUSEHOLD_REGISTERED}' AS type,
           {_household_data("i")} AS data
    FROM ins i
)
{_outbox("changes")}
"""

# A decile change is its own event (with previous_decile); other changed facts are one
# household.updated beside it, both carrying the same row version (as the change API does).
_UPDATE_HOUSEHOLDS = f"""
WITH upd AS (
    UPDATE household h SET {", ".join(f"{c} = p.{c}" for c in HOUSEHOLD_COLUMNS)}
    FROM recon_household_plan p
    WHERE h.id = p.id AND NOT p.is_new AND cardinality(p.changed) > 0
    RETURNING h.*, p.old_decile, p.changed
), changes AS (
    SELECT '{events.HOUSEHOLD_TOPIC}' AS topic, u.id, '{events.HOUSEHOLD_DECILE_CHANGED}' AS type,
           {_household_data("u")} || jsonb_build_object('previous_decile', u.old_decile) AS data
    FROM upd u WHERE 'decile' = ANY(u.changed)
    UNION ALL
    SELECT '{events.HOUSEHOLD_TOPIC}', u.id, '{events.HOUSEHOLD_UPDATED}',
           {_household_data("u")}
           || jsonb_build_object('changed', to_jsonb(array_remove(u.changed, 'decile')))
    FROM upd u WHERE cardinality(array_remove(u.changed, 'decile')) > 0
)
{_outbox("changes")}
"""

_LOCK_PERSONS = """
SELECT 1 FROM person p JOIN recon_work_row r ON r.nik = p.nik
WHERE r.batch_no = $1 ORDER BY p.id FOR UPDATE OF p
"""

_LOCK_MEMBERS = """
SELECT 1 FROM person p JOIN recon_household_plan hp ON p.household_id = hp.id
WHERE p.status = 'alive' ORDER BY p.id FOR UPDATE OF p
"""

_PERSON_DIFF = " ".join(
    f"CASE WHEN p.{c} IS DISTINCT FROM s.{c} THEN '{c}' END," for c in _PERSON_FIELDS
).rstrip(",")

# The plan: every person of the batch with new and old values, what changed and which event.
# Rows of the file, plus (snapshot) living members of the batch's households whose NIK is
# nowhere in the file: they are moved out of the card (status moved, no household).
_PERSON_PLAN = f"""
CREATE TEMP TABLE recon_person_plan ON COMMIT DROP AS
WITH wanted AS (
    SELECT r.line, r.nik, hp.id AS household_id, r.village_code, r.full_name, r.birth_date,
           r.sex, r.relationship, r.status, r.death_date, r.disability, r.education,
           r.occupation, hp.is_new OR cardinality(hp.changed) > 0 AS household_changed,
           false AS missing
    FROM recon_work_row r JOIN recon_household_plan hp ON hp.kk = r.kk
    WHERE r.batch_no = $2
    UNION ALL
    SELECT NULL, p.nik, NULL, p.village_code, p.full_name, p.birth_date, p.sex, p.relationship,
           'moved', p.death_date, p.disability, p.education, p.occupation, false, true
    FROM person p JOIN recon_household_plan hp ON p.household_id = hp.id
    WHERE $1 AND NOT hp.is_new AND p.status = 'alive'
      AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik)
), diff AS (
    SELECT s.*, coalesce(p.id, gen_random_uuid()) AS id, p.id IS NULL AS is_new,
           p.village_code AS old_village_code, p.household_id AS old_household_id,
           p.status AS old_status,
           CASE WHEN p.id IS NULL THEN ARRAY[]::text[]
                ELSE array_remove(ARRAY[{_PERSON_DIFF}], NULL) END AS changed
    FROM wanted s LEFT JOIN person p ON p.nik = s.nik
)
SELECT d.*,
       CASE
           WHEN d.is_new THEN '{events.PERSON_REGISTERED}'
           WHEN cardinality(d.changed) = 0 THEN NULL
           WHEN d.status = 'deceased' AND d.old_status <> 'deceased' THEN '{events.PERSON_DIED}'
           WHEN (d.status = 'moved' AND d.old_status <> 'moved')
                OR d.changed && ARRAY['village_code', 'household_id'] THEN '{events.PERSON_MOVED}'
           ELSE '{events.PERSON_UPDATED}'
       END AS kind,
       d.relationship = 'head' AND d.status = 'alive' AS head_alive,
       false AS applied
FROM diff d
"""

_PERSON_PAYLOAD = f"""
{_person_data("u")} || CASE u.kind
    WHEN '{events.PERSON_DIED}' THEN
        jsonb_build_object('death_date', u.death_date, 'source', 'bps_reconciliation')
    WHEN '{events.PERSON_MOVED}' THEN
        jsonb_build_object('from_village_code', u.old_village_code,
                           'from_household_id', u.old_household_id)
    ELSE jsonb_build_object('changed', to_jsonb(u.changed))
END
"""


def _update_persons(condition: str) -> str:
    """Apply the plan's changed, not yet applied people that meet ``condition``."""
    assignments = ", ".join(f"{c} = x.{c}" for c in _PERSON_FIELDS)
    return f"""
WITH upd AS (
    UPDATE person p SET {assignments}
    FROM recon_person_plan x
    WHERE p.id = x.id AND NOT x.is_new AND x.kind IS NOT NULL AND NOT x.applied
      AND ({condition})
    RETURNING p.*, x.kind, x.changed, x.old_village_code, x.old_household_id
), mark AS (
    UPDATE recon_person_plan x SET applied = true FROM upd WHERE x.id = upd.id
), changes AS (
    SELECT '{events.PERSON_TOPIC}' AS topic, u.id, u.kind AS type, {_PERSON_PAYLOAD} AS data
    FROM upd u
)
{_outbox("changes")}
"""


# One living head per KK is a unique index checked row by row, so people who stop being a living
# head are updated first, then new heads in rounds: a head whose card is still held by a leaving
# head waits for the round after that head has left.
_UPDATE_LEAVERS = _update_persons("NOT x.head_alive")
_UPDATE_HEADS = _update_persons(
    "x.head_alive AND NOT EXISTS (SELECT 1 FROM person o WHERE o.household_id = x.household_id "
    "AND o.relationship = 'head' AND o.status = 'alive' AND o.id <> x.id)"
)
_PENDING_PERSONS = """
SELECT count(*) FROM recon_person_plan WHERE NOT is_new AND kind IS NOT NULL AND NOT applied
"""

_INSERT_PERSONS = f"""
WITH ins AS (
    INSERT INTO person (id, nik, {", ".join(_PERSON_FIELDS)})
    SELECT id, nik, {", ".join(_PERSON_FIELDS)} FROM recon_person_plan WHERE is_new
    RETURNING *
), changes AS (
    SELECT '{events.PERSON_TOPIC}' AS topic, i.id, '{events.PERSON_REGISTERED}' AS type,
           {_person_data("i")} AS data
    FROM ins i
)
{_outbox("changes")}
"""

_BATCH_COUNTS = """
SELECT count(*) FILTER (WHERE NOT missing)::int AS rows,
       count(*) FILTER (WHERE NOT missing AND (kind IS NOT NULL OR household_changed))::int
           AS changed,
       count(*) FILTER (WHERE missing AND kind IS NOT NULL)::int AS moved_out
FROM recon_person_plan
"""

_SAVE_PROGRESS = """
UPDATE import_batch SET changed_rows = $2, unchanged_rows = $3, moved_out = $4,
       events_emitted = $5, event_counts = $6::jsonb, modified_at = now()
WHERE id = $1
"""

_FAIL_BATCH = """
WITH failed AS (
    INSERT INTO import_error (batch_id, line, field, reason)
    SELECT $1, r.line, '', $3 FROM recon_work_row r WHERE r.batch_no = $2
    RETURNING 1
)
UPDATE import_batch SET batches_failed = batches_failed + 1, modified_at = now()
WHERE id = $1
RETURNING (SELECT count(*) FROM failed)::int AS rows
"""


# ---------------------------------------------------------------------------- the pipeline


@dataclass
class ImportSummary:
    id: uuid.UUID
    filename: str
    mode: str
    status: str
    total_rows: int
    valid_rows: int
    invalid_rows: int
    changed_rows: int
    unchanged_rows: int
    moved_out: int
    events_emitted: int
    event_counts: dict[str, int]
    batches_total: int
    batches_failed: int
    failure: str | None

    @classmethod
    def from_record(cls, row: asyncpg.Record) -> ImportSummary:
        counts = row["event_counts"]
        return cls(
            id=row["id"],
            filename=row["filename"],
            mode=row["mode"],
            status=row["status"],
            total_rows=row["total_rows"],
            valid_rows=row["valid_rows"],
            invalid_rows=row["invalid_rows"],
            changed_rows=row["changed_rows"],
            unchanged_rows=row["unchanged_rows"],
            moved_out=row["moved_out"],
            events_emitted=row["events_emitted"],
            event_counts=json.loads(counts) if isinstance(counts, str) else dict(counts),
            batches_total=row["batches_total"],
            batches_failed=row["batches_failed"],
            failure=row["failure"],
        )


class _Totals:
    def __init__(self) -> None:
        self.changed = 0
        self.unchanged = 0
        self.moved_out = 0
        self.events: Counter[str] = Counter()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


async def _connect(database_url: str) -> asyncpg.Connection:
    return await asyncpg.connect(
        sync_url(database_url),
        server_settings={
            "application_name": "simpul-registry-import",
            # Bulk statements on millions of rows: no per-statement limit, but never wait long
            # for a row lock held by an API write (the batch fails and is reported instead).
            "statement_timeout": "0",
            "lock_timeout": "30000",
            "idle_in_transaction_session_timeout": "600000",
            "work_mem": "64MB",
        },
    )


async def _create_import(
    conn: asyncpg.Connection, *, filename: str, sha256: str, mode: Mode, agency: str
) -> uuid.UUID:
    import_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO import_batch (id, filename, sha256, mode, created_by) "
        "VALUES ($1, $2, $3, $4, $5)",
        import_id,
        filename,
        sha256,
        mode,
        agency,
    )
    return import_id


async def import_file(
    database_url: str,
    path: Path,
    *,
    mode: Mode,
    agency: str,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> ImportSummary:
    """The CLI path: record the import, run it, return its summary."""
    conn = await _connect(database_url)
    try:
        import_id = await _create_import(
            conn, filename=path.name, sha256=file_sha256(path), mode=mode, agency=agency
        )
    finally:
        await conn.close()
    return await execute_import(
        database_url, import_id, path, mode=mode, batch_size=batch_size, progress=progress
    )


async def execute_import(
    database_url: str,
    import_id: uuid.UUID,
    path: Path | None,
    *,
    mode: Mode,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> ImportSummary:
    """Run a queued import to its end; a crash marks it failed, never leaves it running.

    ``path`` is the file to stage first (the CLI); None when the upload request staged it
    already (:func:`stage_upload`), so the worker that runs it needs no access to the file."""
    conn = await _connect(database_url)
    try:
        await conn.execute(
            "UPDATE import_batch SET status = 'running', started_at = now(), modified_at = now() "
            "WHERE id = $1",
            import_id,
        )
        try:
            await _Import(conn, import_id, mode, batch_size, progress).run(path)
        except asyncio.CancelledError:
            # The process is stopping: committed batches stay, the import says where it ended.
            with contextlib.suppress(Exception):
                await _finish(conn, import_id, "failed", failure="interrupted: the service stopped")
            raise
        except Exception as exc:
            log.exception("registry.import.failed", extra={"import_id": str(import_id)})
            if conn.is_closed():
                conn = await _connect(database_url)
            await _finish(conn, import_id, "failed", failure=f"{type(exc).__name__}: {exc}")
        row = await conn.fetchrow("SELECT * FROM import_batch WHERE id = $1", import_id)
        return ImportSummary.from_record(row)
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def _finish(
    conn: asyncpg.Connection, import_id: uuid.UUID, status: str, *, failure: str | None = None
) -> None:
    await conn.execute(
        "UPDATE import_batch SET status = $2, failure = $3, finished_at = now(), "
        "modified_at = now() WHERE id = $1",
        import_id,
        status,
        failure[:2000] if failure else None,
    )


class _CopyRefused(Exception):
    """COPY cannot stage this file faithfully; Python's csv module reads it instead."""


class _Import:
    def __init__(
        self,
        conn: asyncpg.Connection,
        import_id: uuid.UUID,
        mode: Mode,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self.conn = conn
        self.id = import_id
        self.snapshot = mode == "snapshot"
        self.batch_size = batch_size
        self.progress = progress or (lambda phase, done, total: None)
        self.traceparent = current_traceparent()
        self.totals = _Totals()
        self.work_rows = 0
        self.invalid_rows = 0  # found by the validation (before the cross-row checks)
        self.today = date.today()
        self.raw = f"{_RAW_PREFIX}{import_id.hex}"

    async def run(self, path: Path | None) -> None:
        conn = self.conn
        await conn.execute(_DROP_TEMP)
        for stale in await conn.fetch(_STALE_RAW_TABLES):
            await conn.execute(f'DROP TABLE IF EXISTS "{stale["relname"]}"')
        try:
            header_problem = await self.stage(path) if path is not None else None
            if header_problem is not None:
                await self._error(1, "", header_problem)
                await _finish(conn, self.id, "failed", failure=header_problem)
                return
            if not await self._staged():
                await _finish(conn, self.id, "failed", failure="its staged rows are gone")
                return
            await self._validate()
            await self._check()
            batches = await self._plan_batches()
            await self._apply(batches)
            await _finish(conn, self.id, "completed")
        finally:
            with contextlib.suppress(Exception):
                await conn.execute(_DROP_TEMP)
            with contextlib.suppress(Exception):
                await conn.execute(f"DROP TABLE IF EXISTS {self.raw}")

    async def _error(self, line: int, field_name: str, reason: str) -> None:
        await self.conn.execute(
            "INSERT INTO import_error (batch_id, line, field, reason) VALUES ($1, $2, $3, $4)",
            self.id,
            line,
            field_name,
            reason[:_MAX_REASON],
        )

    async def stage(self, path: Path) -> str | None:
        """Create the import's raw table and copy the file into it, as text: PostgreSQL parses
        the CSV itself (COPY) when it can; a file it refuses is read by Python's csv module
        instead. Works inside a transaction (the upload request's) and outside (the CLI)."""
        await self.conn.execute(_RAW_DDL.format(raw=self.raw))
        size = (await asyncio.to_thread(path.stat)).st_size
        handle = await asyncio.to_thread(path.open, "rb")
        try:
            header = await asyncio.to_thread(handle.readline)
            if problem := check_header(header.rstrip(b"\r\n")):
                return problem
            try:
                # A savepoint: a refused COPY leaves the raw table empty and the caller's
                # transaction usable.
                async with self.conn.transaction():
                    await self._copy(handle, len(header), size)
            except _CopyRefused:
                await asyncio.to_thread(handle.seek, 0)
                await self._read_slowly(handle, size)
        finally:
            handle.close()
        self.progress("validating", size, size)
        return None

    async def _staged(self) -> bool:
        exists = await self.conn.fetchval("SELECT to_regclass($1) IS NOT NULL", self.raw)
        return bool(exists)

    async def _copy(self, handle: IO[bytes], offset: int, size: int) -> None:
        """COPY the rows after the header; :class:`_CopyRefused` when COPY refused the file or
        its records are not one per physical line (a quoted line break), so line numbers would
        be wrong."""
        newlines, last = 0, b"\n"

        async def blocks() -> AsyncIterator[bytes]:
            nonlocal newlines, last
            done = offset
            while block := await asyncio.to_thread(handle.read, _COPY_BLOCK):
                newlines += block.count(b"\n")
                last = block[-1:]
                done += len(block)
                yield block
                self.progress("validating", done, size)

        try:
            status = await self.conn.copy_to_table(
                self.raw, source=blocks(), columns=COLUMNS, format="csv", force_not_null=COLUMNS
            )
        except asyncpg.DataError as exc:  # wrong field count, blank line, not UTF-8, a NUL...
            raise _CopyRefused from exc
        lines = newlines + (last != b"\n")
        if int(status.split()[-1]) != lines:
            raise _CopyRefused

    async def _read_slowly(self, handle: IO[bytes], size: int) -> None:
        pending: asyncio.Future[list[tuple[Any, ...]]] | None = None
        try:
            reader = await asyncio.to_thread(_FileReader, handle)
            pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
            while records := await pending:
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                await self.conn.copy_records_to_table(
                    self.raw, records=records, columns=_RAW_COLUMNS
                )
                self.progress("validating", reader.bytes_read, size)
        finally:
            if pending is not None:  # never close the file under a reader thread still running
                await asyncio.gather(pending, return_exceptions=True)

    async def _validate(self) -> None:
        """Judge and type every row (set-based, in SQL), then explain the invalid ones."""
        conn = self.conn
        issue_dates = await asyncio.to_thread(kk_issue_dates, self.today)
        days = await asyncio.to_thread(past_days, self.today)
        await conn.execute(
            "CREATE TEMP TABLE recon_row AS " + _judge_sql(self.raw, trimmed=False),
            issue_dates,
            days,
        )
        # The first pass takes fields as they are; rows it refuses are judged again with every
        # field trimmed (a value with spaces around it is rare, trimming all of them is not free).
        again = [r["line"] for r in await conn.fetch("SELECT line FROM recon_row WHERE NOT ok")]
        if not again:
            return
        await conn.execute("DELETE FROM recon_row WHERE line = ANY($1::int[])", again)
        bad = await conn.fetch(
            "INSERT INTO recon_row " + _judge_sql(self.raw, trimmed=True) + " RETURNING line, ok",
            issue_dates,
            days,
            again,
        )
        if not (lines := [r["line"] for r in bad if not r["ok"]]):
            return
        self.invalid_rows = len(lines)
        rows = await conn.fetch(_INVALID_ROWS.format(raw=self.raw), lines, _WHITESPACE)

        def explain() -> list[tuple[Any, ...]]:
            return [
                (self.id, row["line"], name, reason[:_MAX_REASON])
                for row in rows
                for name, reason in _explain(row, today=self.today)
            ]

        errors = await asyncio.to_thread(explain)
        await conn.copy_records_to_table("import_error", records=errors, columns=_ERROR_COLUMNS)

    async def _type_rows(self, lines: str, *args: Any) -> None:
        await self.conn.execute("DROP TABLE IF EXISTS recon_typed")
        await self.conn.execute(_typed_rows_sql(self.raw, lines), *args)

    async def _check(self) -> None:
        """Cross-row checks, then the work (households that differ from the registry) and the
        checks that need the registry, which only the work can fail."""
        conn = self.conn
        async with conn.transaction():
            bad: set[int] = set()
            suspects = await conn.fetch(_SUSPECT_HOUSEHOLDS)
            if mixed := [r["kk"] for r in suspects if r["mixed"]]:
                await self._type_rows("SELECT line FROM recon_row WHERE ok AND kk = ANY($1)", mixed)
                found = await conn.fetch(_CHECK_HOUSEHOLD_COLUMNS, self.id, mixed)
                bad.update(r["line"] for r in found)
            if two_heads := [r["kk"] for r in suspects if r["two_heads"]]:
                found = await conn.fetch(_CHECK_TWO_HEADS, self.id, two_heads)
                bad.update(r["line"] for r in found)
            bad.update(r["line"] for r in await conn.fetch(_CHECK_DUPLICATE_NIK, self.id))
            if bad:
                await conn.execute(_MARK_BAD, list(bad))
            if bad or self.invalid_rows:
                await conn.execute(_SKIP_HOUSEHOLDS, self.id)
            await conn.execute(_WORK_DDL, self.snapshot)
            await conn.execute("CREATE UNIQUE INDEX ON recon_work (kk)")
            await conn.execute("ANALYZE recon_work")  # often small: join from it, not to it
            # Skipping a household keeps its people where they are, which can leave another
            # household of the file with two living heads: repeat until nothing changes.
            while lines := [
                r["line"] for r in await conn.fetch(_CHECK_HEAD_IN_REGISTRY, self.id, self.snapshot)
            ]:
                await conn.execute(_MARK_BAD, lines)
                await conn.execute(_SKIP_HOUSEHOLDS, self.id)
                await conn.execute(_DROP_SKIPPED_WORK)
            total, valid, work = await conn.fetchrow(
                "SELECT count(*)::int, (count(*) FILTER (WHERE ok))::int, "
                "(count(*) FILTER (WHERE ok AND kk IN (SELECT kk FROM recon_work)))::int "
                "FROM recon_row"
            )
            self.totals.unchanged = valid - work
            self.work_rows = work
            await conn.execute(
                "UPDATE import_batch SET total_rows = $2, valid_rows = $3, invalid_rows = $4, "
                "unchanged_rows = $5, modified_at = now() WHERE id = $1",
                self.id,
                total,
                valid,
                total - valid,
                self.totals.unchanged,
            )

    async def _plan_batches(self) -> list[int]:
        conn = self.conn
        await self._type_rows(
            "SELECT line FROM recon_row WHERE ok AND kk IN (SELECT kk FROM recon_work)"
        )
        await conn.execute(_HOUSEHOLDS_DDL)
        await conn.execute("CREATE UNIQUE INDEX ON recon_household (kk)")
        households = await conn.fetch("SELECT kk, rows FROM recon_household ORDER BY first_line")
        edges = await conn.fetch(_MOVE_EDGES)
        assignment = _pack(
            [(r["kk"], r["rows"]) for r in households],
            [(r["kk"], r["old_kk"]) for r in edges],
            self.batch_size,
        )
        await conn.execute("CREATE TEMP TABLE recon_batch (kk text, batch_no int)")
        await conn.copy_records_to_table("recon_batch", records=list(assignment.items()))
        await conn.execute(
            "UPDATE recon_household h SET batch_no = b.batch_no FROM recon_batch b "
            "WHERE b.kk = h.kk"
        )
        await conn.execute("CREATE INDEX ON recon_household (batch_no)")
        await conn.execute("ANALYZE recon_household")
        await conn.execute(_WORK_ROWS_DDL)
        await conn.execute("CREATE INDEX ON recon_work_row (batch_no)")
        await conn.execute("ANALYZE recon_work_row")
        batches = sorted(set(assignment.values()))
        await conn.execute(
            "UPDATE import_batch SET batches_total = $2, modified_at = now() WHERE id = $1",
            self.id,
            len(batches),
        )
        return batches

    async def _apply(self, batches: Sequence[int]) -> None:
        done = 0
        self.progress("applying", done, self.work_rows)
        for batch_no in batches:
            try:
                done += await self._apply_batch(batch_no)
            except (asyncpg.PostgresError, _HeadCycle) as exc:
                reason = f"batch {batch_no + 1} was rolled back: {_describe(exc)}"
                log.warning(
                    "registry.import.batch_failed",
                    extra={"import_id": str(self.id), "batch": batch_no, "error": reason},
                )
                done += await self.conn.fetchval(
                    _FAIL_BATCH, self.id, batch_no, reason[:_MAX_REASON]
                )
            self.progress("applying", done, self.work_rows)

    async def _apply_batch(self, batch_no: int) -> int:
        conn = self.conn
        tp = self.traceparent
        totals = self.totals
        emitted: Counter[str] = Counter()

        def count(rows: Iterable[asyncpg.Record]) -> None:
            for row in rows:
                emitted[row["event_type"]] += row["n"]

        async with conn.transaction():
            await conn.execute(_LOCK_HOUSEHOLDS, batch_no)
            await conn.execute(_HOUSEHOLD_PLAN, batch_no)
            count(await conn.fetch(_INSERT_HOUSEHOLDS, tp))
            count(await conn.fetch(_UPDATE_HOUSEHOLDS, tp))
            await conn.execute(_LOCK_PERSONS, batch_no)
            if self.snapshot:
                await conn.execute(_LOCK_MEMBERS)
            await conn.execute(_PERSON_PLAN, self.snapshot, batch_no)
            count(await conn.fetch(_UPDATE_LEAVERS, tp))
            while pending := await conn.fetchval(_PENDING_PERSONS):
                applied = await conn.fetch(_UPDATE_HEADS, tp)
                if not applied:
                    raise _HeadCycle(f"{pending} heads of household swap cards in a cycle")
                count(applied)
            count(await conn.fetch(_INSERT_PERSONS, tp))
            rows, changed, moved_out = await conn.fetchrow(_BATCH_COUNTS)
            events_after = totals.events + emitted
            await conn.execute(
                _SAVE_PROGRESS,
                self.id,
                totals.changed + changed,
                totals.unchanged + rows - changed,
                totals.moved_out + moved_out,
                sum(events_after.values()),
                json.dumps(dict(sorted(events_after.items()))),
            )
        # Committed: only now do the running totals include this batch.
        totals.changed += changed
        totals.unchanged += rows - changed
        totals.moved_out += moved_out
        totals.events = events_after
        return int(rows)


_DROP_TEMP = (
    "DROP TABLE IF EXISTS recon_row, recon_typed, recon_work, recon_household, recon_batch, "
    "recon_work_row"
)


class _HeadCycle(Exception):
    """Heads of household that swap cards with each other cannot be applied one by one."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.PostgresError):
        constraint = getattr(exc, "constraint_name", None)
        detail = f" ({constraint})" if constraint else ""
        return f"{exc.sqlstate}: {exc.args[0] if exc.args else exc}{detail}"
    return str(exc)


def _pack(
    households: Sequence[tuple[str, int]], edges: Sequence[tuple[str, str]], batch_size: int
) -> dict[str, int]:
    """Batch number of every KK: in file order, whole households, ~``batch_size`` rows each;
    households joined by a move (``edges``) share a batch."""
    parent: dict[str, str] = {}

    def root(kk: str) -> str:
        while parent.get(kk, kk) != kk:
            parent[kk] = parent.get(parent[kk], parent[kk])
            kk = parent[kk]
        return kk

    for a, b in edges:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[rb] = ra
    groups: dict[str, list[tuple[str, int]]] = {}
    for kk, rows in households:
        groups.setdefault(root(kk), []).append((kk, rows))
    assignment: dict[str, int] = {}
    batch_no, filled = 0, 0
    for members in groups.values():  # dicts keep insertion order: the file's order
        size = sum(rows for _, rows in members)
        if filled and filled + size > batch_size:
            batch_no, filled = batch_no + 1, 0
        for kk, _ in members:
            assignment[kk] = batch_no
        filled += size
    return assignment


# ---------------------------------------------------------------------------- for the API


async def stage_upload(session: AsyncSession, *, import_id: uuid.UUID, path: Path) -> None:
    """Copy an uploaded file into its queued import's raw table, in the upload request's
    transaction: the worker that runs the import later reads the rows from the database."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    # Staging uses neither the mode nor the batch size; the job that runs the import does.
    await _Import(raw.driver_connection, import_id, "delta", 1, None).stage(path)


async def queue_import(
    session: AsyncSession, *, filename: str, sha256: str, mode: Mode, agency: str
) -> ImportBatch:
    """Record an import to run once the caller's transaction commits."""
    batch = ImportBatch(
        id=uuid.uuid4(), filename=filename, sha256=sha256, mode=mode, created_by=agency
    )
    session.add(batch)
    await session.flush()
    await session.refresh(batch)
    return batch


async def get_import(session: AsyncSession, *, import_id: uuid.UUID, agency: str) -> ImportBatch:
    """An import of the caller's agency; another agency's reads as one that does not exist."""
    batch = await session.get(ImportBatch, import_id)
    if batch is None or batch.created_by != agency:
        raise ImportNotFound()
    return batch


IMPORT_JOB = "registry.import"


def import_job(settings: RegistrySettings) -> JobKind:
    """How the job runner runs a staged import. A failure is the import's ``failed`` status with
    its reason, not something to retry; a second attempt only happens when the worker of the
    first died, and marks the import failed (interrupted)."""

    async def run(session: AsyncSession, job: Job) -> None:
        import_id = uuid.UUID(job.key)
        # Its own short transaction: none stays open while the import runs.
        async with session_scope(job.sessionmaker) as reading:
            batch = await reading.get(ImportBatch, import_id)
            if batch is not None and batch.status == "running":
                # An earlier attempt's worker died in the middle; what it committed stays.
                batch.status = "failed"
                batch.failure = "interrupted: the worker running it stopped"
                batch.finished_at = func.now()
        if batch is None or batch.status != "queued":
            return
        await execute_import(
            settings.database_url,
            import_id,
            None,
            mode=job.payload["mode"],
            batch_size=settings.import_batch_size,
        )

    return JobKind(run, max_attempts=2, lease_seconds=120)


def render_error_rows(rows: Iterable[Sequence[Any]], *, header: bool) -> str:
    """Rows (line, field, reason) of the downloadable error report as CSV text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(("line", "field", "reason"))
    writer.writerows(rows)
    return buffer.getvalue()


def errors_query(import_id: uuid.UUID) -> Any:
    return (
        select(ImportRowError.line, ImportRowError.field, ImportRowError.reason)
        .where(ImportRowError.batch_id == import_id)
        .order_by(ImportRowError.line, ImportRowError.id)
    )


async def write_error_report(database_url: str, import_id: uuid.UUID, target: Path) -> int:
    """Write the import's error report to ``target``; returns the number of errors."""
    conn = await _connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT line, field, reason FROM import_error WHERE batch_id = $1 ORDER BY line, id",
            import_id,
        )
    finally:
        await conn.close()
    report = render_error_rows([tuple(r) for r in rows], header=True)
    await asyncio.to_thread(target.write_text, report, encoding="utf-8")
    return len(rows)
