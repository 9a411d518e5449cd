"""The import pipeline: one dedicated asyncpg connection runs the stages of
:mod:`registry.reconciliation` in order, batch by batch, and records the import's counters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg

from registry.reconciliation.apply import (
    BATCH_COUNTS,
    CHECK_HEAD_IN_REGISTRY,
    DROP_SKIPPED_WORK,
    FAIL_BATCH,
    HOUSEHOLD_PLAN,
    HOUSEHOLDS_DDL,
    INSERT_HOUSEHOLDS,
    INSERT_PERSONS,
    LOCK_HOUSEHOLDS,
    LOCK_MEMBERS,
    LOCK_PERSONS,
    MOVE_EDGES,
    PENDING_PERSONS,
    PERSON_PLAN,
    SAVE_PROGRESS,
    UPDATE_HEADS,
    UPDATE_HOUSEHOLDS,
    UPDATE_LEAVERS,
    WORK_DDL,
    WORK_ROWS_DDL,
)
from registry.reconciliation.staging import (
    COLUMNS,
    COPY_BLOCK,
    DROP_TEMP,
    RAW_COLUMNS,
    RAW_DDL,
    RAW_PREFIX,
    STALE_RAW_TABLES,
    CopyRefused,
    FileReader,
    check_header,
    file_sha256,
)
from registry.reconciliation.validation import (
    CHECK_DUPLICATE_NIK,
    CHECK_HOUSEHOLD_COLUMNS,
    CHECK_TWO_HEADS,
    INVALID_ROWS,
    MARK_BAD,
    SKIP_HOUSEHOLDS,
    SUSPECT_HOUSEHOLDS,
    WHITESPACE,
    explain_row,
    judge_sql,
    kk_issue_dates,
    past_days,
    typed_rows_sql,
)
from shared.db import sync_url
from shared.observability import current_traceparent

__all__ = [
    "ImportRun",
    "ImportSummary",
    "Mode",
    "Progress",
    "connect",
    "execute_import",
    "import_file",
]

log = logging.getLogger("registry.reconciliation")

Mode = Literal["delta", "snapshot"]
# (phase, done, total): "validating" counts bytes of the file, "applying" counts rows.
Progress = Callable[[str, int, int], None]
_ERROR_COLUMNS = ("batch_id", "line", "field", "reason")
_MAX_REASON = 500


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


async def connect(database_url: str) -> asyncpg.Connection:
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
    conn = await connect(database_url)
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
    conn = await connect(database_url)
    try:
        await conn.execute(
            "UPDATE import_batch SET status = 'running', started_at = now(), modified_at = now() "
            "WHERE id = $1",
            import_id,
        )
        try:
            await ImportRun(conn, import_id, mode, batch_size, progress).run(path)
        except asyncio.CancelledError:
            # The process is stopping: committed batches stay, the import says where it ended.
            with contextlib.suppress(Exception):
                await _finish(conn, import_id, "failed", failure="interrupted: the service stopped")
            raise
        except Exception as exc:
            log.exception("registry.import.failed", extra={"import_id": str(import_id)})
            if conn.is_closed():
                conn = await connect(database_url)
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


class ImportRun:
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
        self.raw = f"{RAW_PREFIX}{import_id.hex}"

    async def run(self, path: Path | None) -> None:
        conn = self.conn
        await conn.execute(DROP_TEMP)
        for stale in await conn.fetch(STALE_RAW_TABLES):
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
                await conn.execute(DROP_TEMP)
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
        await self.conn.execute(RAW_DDL.format(raw=self.raw))
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
            except CopyRefused:
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
        """COPY the rows after the header; :class:`CopyRefused` when COPY refused the file or
        its records are not one per physical line (a quoted line break), so line numbers would
        be wrong."""
        newlines, last = 0, b"\n"

        async def blocks() -> AsyncIterator[bytes]:
            nonlocal newlines, last
            done = offset
            while block := await asyncio.to_thread(handle.read, COPY_BLOCK):
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
            raise CopyRefused from exc
        lines = newlines + (last != b"\n")
        if int(status.split()[-1]) != lines:
            raise CopyRefused

    async def _read_slowly(self, handle: IO[bytes], size: int) -> None:
        pending: asyncio.Future[list[tuple[Any, ...]]] | None = None
        try:
            reader = await asyncio.to_thread(FileReader, handle)
            pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
            while records := await pending:
                pending = asyncio.ensure_future(asyncio.to_thread(reader.next_chunk))
                await self.conn.copy_records_to_table(
                    self.raw, records=records, columns=RAW_COLUMNS
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
            "CREATE TEMP TABLE recon_row AS " + judge_sql(self.raw, trimmed=False),
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
            "INSERT INTO recon_row " + judge_sql(self.raw, trimmed=True) + " RETURNING line, ok",
            issue_dates,
            days,
            again,
        )
        if not (lines := [r["line"] for r in bad if not r["ok"]]):
            return
        self.invalid_rows = len(lines)
        rows = await conn.fetch(INVALID_ROWS.format(raw=self.raw), lines, WHITESPACE)

        def explain() -> list[tuple[Any, ...]]:
            return [
                (self.id, row["line"], name, reason[:_MAX_REASON])
                for row in rows
                for name, reason in explain_row(row, today=self.today)
            ]

        errors = await asyncio.to_thread(explain)
        await conn.copy_records_to_table("import_error", records=errors, columns=_ERROR_COLUMNS)

    async def _type_rows(self, lines: str, *args: Any) -> None:
        await self.conn.execute("DROP TABLE IF EXISTS recon_typed")
        await self.conn.execute(typed_rows_sql(self.raw, lines), *args)

    async def _check(self) -> None:
        """Cross-row checks, then the work (households that differ from the registry) and the
        checks that need the registry, which only the work can fail."""
        conn = self.conn
        async with conn.transaction():
            bad: set[int] = set()
            suspects = await conn.fetch(SUSPECT_HOUSEHOLDS)
            if mixed := [r["kk"] for r in suspects if r["mixed"]]:
                await self._type_rows("SELECT line FROM recon_row WHERE ok AND kk = ANY($1)", mixed)
                found = await conn.fetch(CHECK_HOUSEHOLD_COLUMNS, self.id, mixed)
                bad.update(r["line"] for r in found)
            if two_heads := [r["kk"] for r in suspects if r["two_heads"]]:
                found = await conn.fetch(CHECK_TWO_HEADS, self.id, two_heads)
                bad.update(r["line"] for r in found)
            bad.update(r["line"] for r in await conn.fetch(CHECK_DUPLICATE_NIK, self.id))
            if bad:
                await conn.execute(MARK_BAD, list(bad))
            if bad or self.invalid_rows:
                await conn.execute(SKIP_HOUSEHOLDS, self.id)
            await conn.execute(WORK_DDL, self.snapshot)
            await conn.execute("CREATE UNIQUE INDEX ON recon_work (kk)")
            await conn.execute("ANALYZE recon_work")  # often small: join from it, not to it
            # Skipping a household keeps its people where they are, which can leave another
            # household of the file with two living heads: repeat until nothing changes.
            while lines := [
                r["line"] for r in await conn.fetch(CHECK_HEAD_IN_REGISTRY, self.id, self.snapshot)
            ]:
                await conn.execute(MARK_BAD, lines)
                await conn.execute(SKIP_HOUSEHOLDS, self.id)
                await conn.execute(DROP_SKIPPED_WORK)
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
        await conn.execute(HOUSEHOLDS_DDL)
        await conn.execute("CREATE UNIQUE INDEX ON recon_household (kk)")
        households = await conn.fetch("SELECT kk, rows FROM recon_household ORDER BY first_line")
        edges = await conn.fetch(MOVE_EDGES)
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
        await conn.execute(WORK_ROWS_DDL)
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
                    FAIL_BATCH, self.id, batch_no, reason[:_MAX_REASON]
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
            await conn.execute(LOCK_HOUSEHOLDS, batch_no)
            await conn.execute(HOUSEHOLD_PLAN, batch_no)
            count(await conn.fetch(INSERT_HOUSEHOLDS, tp))
            count(await conn.fetch(UPDATE_HOUSEHOLDS, tp))
            await conn.execute(LOCK_PERSONS, batch_no)
            if self.snapshot:
                await conn.execute(LOCK_MEMBERS)
            await conn.execute(PERSON_PLAN, self.snapshot, batch_no)
            count(await conn.fetch(UPDATE_LEAVERS, tp))
            while pending := await conn.fetchval(PENDING_PERSONS):
                applied = await conn.fetch(UPDATE_HEADS, tp)
                if not applied:
                    raise _HeadCycle(f"{pending} heads of household swap cards in a cycle")
                count(applied)
            count(await conn.fetch(INSERT_PERSONS, tp))
            rows, changed, moved_out = await conn.fetchrow(BATCH_COUNTS)
            events_after = totals.events + emitted
            await conn.execute(
                SAVE_PROGRESS,
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
