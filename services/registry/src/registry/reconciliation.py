"""BPS reconciliation: apply a DTSEN snapshot or delta file to the registry, in bulk.

RECONCILIATION.md beside the service describes the file format and the semantics; this module is
the pipeline behind ``python -m registry import`` and ``POST /v1/imports``:

1. **Validate and stage.** The CSV is read as a stream; every row is checked in Python
   (:func:`registry.nik.nik_problems` and :func:`registry.nik.kk_problems`, the village and
   district code sets loaded once per import) and copied, valid or not, into a temporary staging
   table with ``copy_records_to_table`` (binary COPY). Problems go to ``import_error``.
2. **Cross-row checks, set-based.** Household columns must be equal on every member row, a NIK
   may appear once per file, a KK has at most one living head, and a household must not end up
   with two living heads in the registry. A household with any bad row is skipped whole: its
   other rows are reported as skipped, so nothing of it is half-applied.
3. **The work, and batches.** One set-based comparison with the registry finds the households
   where anything differs (new card or person, changed value, a member on another card; in a
   snapshot, a member no longer listed): only those are locked and written, the other rows are
   counted unchanged. The work is packed into batches of about ``batch_size`` rows, households
   never split; households linked by a person moving between them share a batch, so a move is
   applied at once on both sides.
4. **Apply, one transaction per batch.** Lock the rows, compute the difference against the
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
import hashlib
import io
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg
from sqlalchemy import select
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
from registry.nik import kk_problems, nik_problems
from shared.db import sync_url
from shared.errors import Forbidden, NotFound, UnprocessableContent
from shared.observability import current_traceparent

__all__ = [
    "COLUMNS",
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
    "queue_import",
    "render_error_rows",
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
_STAGE_COLUMNS = ("line", *COLUMNS, "ok", "household_hash")
_ERROR_COLUMNS = ("batch_id", "line", "field", "reason")
_CHUNK_ROWS = 10_000
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


_ENUMS = {
    name: _choices(name, values)
    for name, values in (
        ("floor", FLOOR),
        ("wall", WALL),
        ("roof", ROOF),
        ("water", WATER),
        ("sanitation", SANITATION),
        ("electricity", ELECTRICITY),
        ("relationship", RELATIONSHIPS),
        ("status", STATUSES),
        ("disability", DISABILITIES),
        ("education", EDUCATION),
    )
}


_DECILES = frozenset(str(d) for d in range(1, 11))
_DECILE_TEXTS = _DECILES | {""}
_FLOOR, _WALL, _ROOF = frozenset(FLOOR), frozenset(WALL), frozenset(ROOF)
_WATER, _SANITATION, _ELECTRICITY = frozenset(WATER), frozenset(SANITATION), frozenset(ELECTRICITY)
_RELATIONSHIPS, _DISABILITIES = frozenset(RELATIONSHIPS), frozenset(DISABILITIES)
_EDUCATION, _LIVING = frozenset(EDUCATION), frozenset(STATUSES) - {"deceased"}
_BOOLEANS, _SEXES = frozenset(("true", "false")), frozenset(("M", "F"))


def _parse_date(value: str) -> date | None:
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class _Chunk:
    records: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[int, str, str]] = field(default_factory=list)
    bytes_read: int = 0


class _RowReader:
    """Reads and validates the file chunk by chunk (run in a thread: it is pure CPU)."""

    def __init__(
        self, handle: IO[bytes], *, villages: frozenset[str], districts: frozenset[str]
    ) -> None:
        self._handle = handle
        self._villages = villages
        self._districts = districts
        self._today = date.today()
        self._kk_cache: dict[str, list[str]] = {}
        self._dates: dict[str, date | None] = {}
        self.bytes_read = 0
        self._physical_line = 0
        self._bad_lines: set[int] = set()  # not UTF-8, or holding a NUL
        self._rows = csv.reader(self._lines())
        header = next(self._rows, None)
        self.header_problem = (
            "the file is empty"
            if header is None
            else "the file is not UTF-8"
            if self._bad_lines
            else check_header(",".join(header).encode())
        )
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

    def next_chunk(self, size: int = _CHUNK_ROWS) -> _Chunk | None:
        chunk = _Chunk()
        check = self._check
        rows = self._rows
        for fields in rows:
            line = self._last_line + 1
            self._last_line = rows.line_num
            if not fields or fields == [""]:
                continue  # blank line
            check(line, fields, chunk, bool(self._bad_lines) and self._is_bad(line))
            if len(chunk.records) >= size:
                break
        chunk.bytes_read = self.bytes_read
        return chunk if chunk.records else None

    def _is_bad(self, line: int) -> bool:
        return any(n in self._bad_lines for n in range(line, self._last_line + 1))

    def _date(self, text: str) -> date | None:
        if text in self._dates:
            return self._dates[text]
        found = _parse_date(text)
        if len(self._dates) < 200_000:
            self._dates[text] = found
        return found

    def _kk(self, kk: str) -> list[str]:
        found = self._kk_cache.get(kk)
        if found is None:
            found = kk_problems(kk, today=self._today)
            if not found and kk[:6] not in self._districts:
                found = [f"KK district code {kk[:6]} does not exist"]
            if len(self._kk_cache) < 200_000:
                self._kk_cache[kk] = found
        return found

    def _check(self, line: int, fields: list[str], chunk: _Chunk, bad_text: bool) -> None:
        """Fast path: one boolean expression over the raw fields, true for a clean valid row.
        Anything else goes through :meth:`_explain`, which strips, decides and says why."""
        if len(fields) == len(COLUMNS) and not bad_text:
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
            ) = fields
            dates = self._dates
            birth = dates[birth_text] if birth_text in dates else self._date(birth_text)
            death = self._date(death_text) if status == "deceased" else None
            today = self._today
            kk_found = self._kk_cache.get(kk)
            if kk_found is None:
                kk_found = self._kk(kk)
            if (
                birth is not None
                and birth <= today
                and village in self._villages
                and decile_text in _DECILE_TEXTS
                and floor in _FLOOR
                and wall in _WALL
                and roof in _ROOF
                and water in _WATER
                and sanitation in _SANITATION
                and electricity in _ELECTRICITY
                and fit_text in _BOOLEANS
                and sex in _SEXES
                and relationship in _RELATIONSHIPS
                and disability in _DISABILITIES
                and education in _EDUCATION
                and (
                    (status == "deceased" and death is not None and birth <= death <= today)
                    or (status in _LIVING and not death_text)
                )
                and 0 < len(full_name) <= 200
                and len(address) <= 500
                and len(occupation) <= 100
                and full_name == full_name.strip()
                and address == address.strip()
                and occupation == occupation.strip()
                and nik[:6] in self._districts
                and not kk_found
                and not nik_problems(nik, birth_date=birth, sex=sex)
            ):
                decile = None if not decile_text else int(decile_text)
                house: tuple[Any, ...] = (village, address, decile, floor, wall, roof, water)
                house += (sanitation,)
                house += (electricity, fit_text == "true")
                chunk.records.append(
                    (line, kk, *house, nik, full_name, birth, sex, relationship, status)
                    + (death, disability, education, occupation, True, hash(house))
                )
                return
        self._explain(line, fields, chunk, bad_text)

    def _explain(self, line: int, fields: list[str], chunk: _Chunk, bad_text: bool) -> None:
        problems: list[tuple[str, str]] = []
        if bad_text:
            problems.append(("", "the row is not valid UTF-8 text (or holds a NUL character)"))
        if len(fields) != len(COLUMNS):
            problems.append(("", f"expected {len(COLUMNS)} fields, found {len(fields)}"))
            raw_kk = fields[0].strip() if fields else ""
            raw_nik = fields[11].strip() if len(fields) > 11 else ""
            chunk.records.append(_bad_record(line, raw_kk, raw_nik))
            chunk.errors.extend((line, f, r) for f, r in problems)
            return
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
        ) = map(str.strip, fields)

        problems.extend(("kk", p) for p in self._kk(kk))
        if village not in self._villages:
            problems.append(("village_code", f"{village!r} is not a Kemendagri village code"))
        if len(address) > 500:
            problems.append(("address", "address is longer than 500 characters"))
        decile: int | None = None
        if decile_text:
            if decile_text in _DECILES:
                decile = int(decile_text)
            else:
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
        fit = fit_text.lower()
        if fit not in ("true", "false"):
            problems.append(("house_fit", f"house_fit must be true or false, found {fit_text!r}"))

        birth = _parse_date(birth_text)
        if birth is None:
            problems.append(("birth_date", f"{birth_text[:20]!r} is not a date (YYYY-MM-DD)"))
        elif birth > self._today:
            problems.append(("birth_date", "birth date is in the future"))
        if sex not in ("M", "F"):
            problems.append(("sex", f"sex must be M or F, found {sex[:10]!r}"))
        nik_found = nik_problems(nik, birth_date=birth, sex=sex if sex in ("M", "F") else None)
        if not nik_found and nik[:6] not in self._districts:
            nik_found = [f"NIK district code {nik[:6]} does not exist"]
        problems.extend(("nik", p) for p in nik_found)
        if not full_name:
            problems.append(("full_name", "full_name is empty"))
        elif len(full_name) > 200:
            problems.append(("full_name", "full_name is longer than 200 characters"))

        death: date | None = None
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
            elif death > self._today:
                problems.append(("death_date", "death date is in the future"))
            elif birth is not None and death < birth:
                problems.append(("death_date", "death date is before the birth date"))
        elif death_text:
            problems.append(("death_date", "death_date must be empty unless status is deceased"))
        if len(occupation) > 100:
            problems.append(("occupation", "occupation is longer than 100 characters"))

        if problems:
            chunk.records.append(_bad_record(line, kk, nik))
            chunk.errors.extend((line, f, r) for f, r in problems)
            return
        house: tuple[Any, ...] = (village, address, decile, floor, wall, roof, water, sanitation)
        house += (electricity, fit == "true")
        chunk.records.append(
            (line, kk, *house, nik, full_name, birth, sex, relationship, status)
            + (death, disability, education, occupation, True, hash(house))
        )


def _bad_record(line: int, kk: str, nik: str) -> tuple[Any, ...]:
    """A staged invalid row: only what cross-row checks need (its KK and NIK when well-formed)."""
    keep_kk = kk if len(kk) == 16 and kk.isdigit() else None
    keep_nik = nik if len(nik) == 16 and nik.isdigit() else None
    return (line, keep_kk, *([None] * 10), keep_nik, *([None] * 9), False, None)


# ---------------------------------------------------------------------------- SQL

_STAGE_DDL = """
CREATE TEMP TABLE recon_row (
    line integer NOT NULL, kk text, village_code text, address text, decile smallint,
    floor text, wall text, roof text, water text, sanitation text, electricity text,
    house_fit boolean, nik text, full_name text, birth_date date, sex text, relationship text,
    status text, death_date date, disability text, education text, occupation text,
    ok boolean NOT NULL, household_hash bigint
)
"""

# Cross-row checks of the file; each inserts its errors and returns the lines it found bad.
# Household columns are compared through a hash of them computed while reading, and only the
# KKs whose rows disagree are compared column by column, to name the field.
_MIXED_HOUSEHOLDS = """
SELECT kk FROM recon_row WHERE ok GROUP BY kk HAVING min(household_hash) <> max(household_hash)
"""

_CHECK_HOUSEHOLD_COLUMNS = f"""
WITH first_row AS (
    SELECT DISTINCT ON (kk) * FROM recon_row
    WHERE ok AND kk = ANY($2::text[]) ORDER BY kk, line
)
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, r.line, v.field,
       format('%s differs from line %s of the same KK (household columns must be equal on '
              'every member row)', v.field, f.line)
FROM recon_row r
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
    FROM recon_row WHERE ok AND relationship = 'head' AND status = 'alive'
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
_WORK_DDL = f"""
CREATE TEMP TABLE recon_work AS
SELECT r.kk FROM recon_row r
LEFT JOIN household h ON h.kk = r.kk
LEFT JOIN person p ON p.nik = r.nik
WHERE r.ok AND (
    h.id IS NULL OR p.id IS NULL
    OR {_tuple("h", HOUSEHOLD_COLUMNS)} IS DISTINCT FROM {_tuple("r", HOUSEHOLD_COLUMNS)}
    OR {_tuple("p", _PERSON_FIELDS)} IS DISTINCT FROM
       {_tuple("r", _PERSON_FIELDS).replace("r.household_id", "h.id")}
)
UNION
SELECT h.kk FROM household h JOIN person p ON p.household_id = h.id
WHERE $1 AND p.status = 'alive'
  AND h.kk IN (SELECT kk FROM recon_row WHERE ok)
  AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik)
"""

_DROP_SKIPPED_WORK = """
DELETE FROM recon_work w WHERE NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.kk = w.kk AND r.ok)
"""

# A living head in the registry whom the file leaves in place (not in the file's valid rows and,
# in a snapshot, not about to be moved out for being absent) clashes with the file's new head.
_CHECK_HEAD_IN_REGISTRY = """
INSERT INTO import_error (batch_id, line, field, reason)
SELECT $1, f.line, 'relationship',
       'the KK already has a living head in the registry whom this file does not change; '
       'give that member''s new relationship or status in the same file'
FROM recon_row f
JOIN recon_work w ON w.kk = f.kk
JOIN household h ON h.kk = f.kk
WHERE f.ok AND f.relationship = 'head' AND f.status = 'alive'
  AND EXISTS (
    SELECT 1 FROM person p
    WHERE p.household_id = h.id AND p.relationship = 'head' AND p.status = 'alive'
      AND p.nik <> f.nik
      AND NOT EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik AND r.ok)
      AND (NOT $2 OR EXISTS (SELECT 1 FROM recon_row r WHERE r.nik = p.nik))
  )
RETURNING line
"""

_HOUSEHOLDS_DDL = f"""
CREATE TEMP TABLE recon_household AS
SELECT DISTINCT ON (r.kk) r.kk, r.line AS first_line,
       {", ".join(f"r.{c}" for c in HOUSEHOLD_COLUMNS)},
       count(*) OVER (PARTITION BY r.kk) AS rows, 0 AS batch_no
FROM recon_row r WHERE r.ok AND r.kk IN (SELECT kk FROM recon_work)
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
SELECT r.*, h.batch_no FROM recon_row r JOIN recon_household h ON h.kk = r.kk
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
    path: Path,
    *,
    mode: Mode,
    batch_size: int = 20_000,
    progress: Progress | None = None,
) -> ImportSummary:
    """Run a queued import to its end; a crash marks it failed, never leaves it running."""
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

    async def run(self, path: Path) -> None:
        conn = self.conn
        await conn.execute(_DROP_TEMP)
        await conn.execute(_STAGE_DDL)
        try:
            header_problem = await self._stage(path)
            if header_problem is not None:
                await self._error(1, "", header_problem)
                await _finish(conn, self.id, "failed", failure=header_problem)
                return
            await self._check()
            batches = await self._plan_batches()
            await self._apply(batches)
            await _finish(conn, self.id, "completed")
        finally:
            with contextlib.suppress(Exception):
                await conn.execute(_DROP_TEMP)

    async def _error(self, line: int, field_name: str, reason: str) -> None:
        await self.conn.execute(
            "INSERT INTO import_error (batch_id, line, field, reason) VALUES ($1, $2, $3, $4)",
            self.id,
            line,
            field_name,
            reason[:_MAX_REASON],
        )

    async def _stage(self, path: Path) -> str | None:
        """Validate every row and COPY it into the staging table; the next chunk is read and
        checked in a thread while the database takes the previous one."""
        conn = self.conn
        villages, districts = await self._region_codes()
        size = (await asyncio.to_thread(path.stat)).st_size
        handle = await asyncio.to_thread(path.open, "rb")
        pending: asyncio.Future[_Chunk | None] | None = None
        try:
            reader = await asyncio.to_thread(
                _RowReader, handle, villages=villages, districts=districts
            )
            if reader.header_problem is not None:
                return reader.header_problem
            pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                await conn.copy_records_to_table(
                    "recon_row", records=chunk.records, columns=_STAGE_COLUMNS
                )
                if chunk.errors:
                    await conn.copy_records_to_table(
                        "import_error",
                        records=[(self.id, n, f, r[:_MAX_REASON]) for n, f, r in chunk.errors],
                        columns=_ERROR_COLUMNS,
                    )
                self.progress("validating", chunk.bytes_read, size)
        finally:
            if pending is not None:  # never close the file under a reader thread still running
                await asyncio.gather(pending, return_exceptions=True)
            handle.close()
        self.progress("validating", size, size)
        return None

    async def _region_codes(self) -> tuple[frozenset[str], frozenset[str]]:
        rows = await self.conn.fetch("SELECT code, level FROM region WHERE level IN (3, 4)")
        villages = frozenset(r["code"] for r in rows if r["level"] == 4)
        districts = frozenset(r["code"] for r in rows if r["level"] == 3)
        return villages, districts

    async def _check(self) -> None:
        """Cross-row checks, then the work (households that differ from the registry) and the
        checks that need the registry, which only the work can fail."""
        conn = self.conn
        # NIK probes (is this registry member anywhere in the file?) need the index.
        await conn.execute("CREATE INDEX ON recon_row (nik)")
        await conn.execute("ANALYZE recon_row (kk, nik, ok, line, relationship, status)")
        async with conn.transaction():
            bad: set[int] = set()
            if mixed := [r["kk"] for r in await conn.fetch(_MIXED_HOUSEHOLDS)]:
                found = await conn.fetch(_CHECK_HOUSEHOLD_COLUMNS, self.id, mixed)
                bad.update(r["line"] for r in found)
            for statement in (_CHECK_DUPLICATE_NIK, _CHECK_TWO_HEADS):
                bad.update(r["line"] for r in await conn.fetch(statement, self.id))
            await conn.execute(_MARK_BAD, list(bad))
            await conn.execute(_SKIP_HOUSEHOLDS, self.id)
            await conn.execute(_WORK_DDL, self.snapshot)
            await conn.execute("CREATE UNIQUE INDEX ON recon_work (kk)")
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
    "DROP TABLE IF EXISTS recon_row, recon_work, recon_household, recon_batch, recon_work_row"
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
