"""Reconciliation use cases for the API and the CLI: queue an upload, stage it in the request's
transaction, read an import and its error report."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import (
    ImportBatch,
    ImportRowError,
)
from registry.reconciliation.errors import ImportNotFound
from registry.reconciliation.pipeline import ImportRun, Mode, connect

__all__ = [
    "errors_query",
    "read_import",
    "queue_import",
    "render_error_rows",
    "stage_upload",
    "write_error_report",
]


async def stage_upload(session: AsyncSession, *, import_id: uuid.UUID, path: Path) -> None:
    """Copy an uploaded file into its queued import's raw table, in the upload request's
    transaction: the worker that runs the import later reads the rows from the database."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    # Staging uses neither the mode nor the batch size; the job that runs the import does.
    await ImportRun(raw.driver_connection, import_id, "delta", 1, None).stage(path)


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


async def read_import(session: AsyncSession, *, import_id: uuid.UUID, agency: str) -> ImportBatch:
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
    conn = await connect(database_url)
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
