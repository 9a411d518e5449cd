"""BPS reconciliation imports: upload a DTSEN file, follow it, download its error report.

The upload is streamed to a temporary file (hashed on the way), then, in the request's
transaction, recorded as a queued import, copied into the import's raw table and scheduled as a
``registry.import`` job (:mod:`shared.jobs`). A worker process runs it with the same pipeline as
``python -m registry import``, reading the rows from the database, so it needs no access to this
process's files. Clients poll ``GET /v1/imports/{id}`` until ``status`` is ``completed`` or
``failed``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, computed_field

from registry.reconciliation import service
from registry.reconciliation.errors import ImportNotFound, ImportsAreNational, InvalidImportFile
from registry.reconciliation.scheduled import IMPORT_JOB
from registry.reconciliation.staging import check_header
from shared import jobs
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, PayloadTooLarge, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep, get_runtime

router = APIRouter(prefix="/v1", tags=["imports"])
log = logging.getLogger("registry.reconciliation.api")

_CHUNK = 1 << 20


def _national_importer(
    caller: Annotated[Caller, Depends(require_scope("registry:import"))],
) -> Caller:
    # A reconciliation file moves people between regions; only national staff may apply one.
    if not caller.is_national:
        raise ImportsAreNational("reconciliation imports need a token without a regions claim")
    return caller


Importer = Annotated[Caller, Depends(_national_importer)]


class ImportRead(BaseModel):
    """An import and what it did so far; the counters follow each committed batch."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b7e3c1e-5a55-4d1e-9d67-3f2b1c0a9e11",
                    "filename": "dtsen-1771-2026-10.csv",
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "mode": "delta",
                    "status": "completed",
                    "created_by": "BPS",
                    "total_rows": 1200,
                    "valid_rows": 1196,
                    "invalid_rows": 4,
                    "changed_rows": 37,
                    "unchanged_rows": 1159,
                    "moved_out": 0,
                    "events_emitted": 41,
                    "event_counts": {
                        "registry.household.decile_changed.v1": 12,
                        "registry.person.died.v1": 3,
                    },
                    "batches_total": 1,
                    "batches_failed": 0,
                    "failure": None,
                    "created_at": "2026-11-25T08:00:00Z",
                    "started_at": "2026-11-25T08:00:00Z",
                    "finished_at": "2026-11-25T08:00:04Z",
                    "errors_url": "/v1/imports/0b7e3c1e-5a55-4d1e-9d67-3f2b1c0a9e11/errors.csv",
                }
            ]
        },
    )

    id: uuid.UUID
    filename: str
    sha256: str = Field(description="SHA-256 of the uploaded file")
    mode: Literal["delta", "snapshot"]
    status: Literal["queued", "running", "completed", "failed"]
    created_by: str = Field(description="Agency of the token that uploaded the file")
    total_rows: int = Field(description="Data rows in the file (the header not counted)")
    valid_rows: int = Field(description="Rows that passed validation and were not skipped")
    invalid_rows: int = Field(description="Rows in the error report because of validation")
    changed_rows: int = Field(description="Valid rows whose person or household was written")
    unchanged_rows: int = Field(description="Valid rows equal to the registry already")
    moved_out: int = Field(description="Snapshot: members missing from their KK, marked moved")
    events_emitted: int
    event_counts: dict[str, int] = Field(description="Events emitted, by type")
    batches_total: int
    batches_failed: int = Field(description="Batches rolled back; their rows are in the report")
    failure: str | None = Field(description="Why the import failed as a whole")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def errors_url(self) -> str:
        return f"/v1/imports/{self.id}/errors.csv"


class _ImportRequest(BaseModel):
    """What makes two uploads the same request (for Idempotency-Key)."""

    filename: str
    sha256: str
    mode: str


class _Upload:
    def __init__(self, path: Path, sha256: str) -> None:
        self.path = path
        self.sha256 = sha256

    async def discard(self) -> None:
        await asyncio.to_thread(self.path.unlink, missing_ok=True)


async def _save_upload(file: UploadFile) -> _Upload:
    """Stream the upload to a temporary file, hashing it, and check its header row."""
    fd, name = await asyncio.to_thread(tempfile.mkstemp, prefix="simpul-import-", suffix=".csv")
    handle = os.fdopen(fd, "wb")
    upload = _Upload(Path(name), "")
    digest = hashlib.sha256()
    first_line = b""
    try:
        while chunk := await file.read(_CHUNK):
            digest.update(chunk)
            if b"\n" not in first_line and len(first_line) < 65_536:
                first_line += chunk[:65_536]
            await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        handle.close()
        await upload.discard()
        raise
    handle.close()
    problem = check_header(first_line.split(b"\n", 1)[0].rstrip(b"\r"))
    if problem is not None:
        await upload.discard()
        raise InvalidImportFile(problem, field="file")
    upload.sha256 = digest.hexdigest()
    return upload


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportRead,
    responses=problem_responses(
        Unauthorized,
        Forbidden,
        ImportsAreNational,
        InvalidImportFile,
        PayloadTooLarge,
        IdempotencyKeyConflict,
        IdempotencyKeyInFlight,
    ),
)
async def queue_import(
    file: Annotated[
        UploadFile,
        File(description="DTSEN snapshot or delta CSV, UTF-8 with the header row"),
    ],
    session: SessionDep,
    caller: Importer,
    idempotency: IdempotencyDep,
    mode: Annotated[
        Literal["delta", "snapshot"],
        Form(description="delta: upsert the rows; snapshot: also move out missing members"),
    ] = "delta",
) -> JSONResponse:
    """Upload a DTSEN file; it is staged at once and imported by a worker (202). Poll the
    Location."""
    upload = await _save_upload(file)
    filename = Path(file.filename or "upload.csv").name[:200]
    try:
        fingerprint = _ImportRequest(filename=filename, sha256=upload.sha256, mode=mode)
        if (replay := await idempotency.begin(session, caller, fingerprint)) is not None:
            return replay
        batch = await service.queue_import(
            session, filename=filename, sha256=upload.sha256, mode=mode, agency=caller.agency
        )
        await service.stage_upload(session, import_id=batch.id, path=upload.path)
        await jobs.schedule(session, kind=IMPORT_JOB, key=str(batch.id), payload={"mode": mode})
    finally:
        await upload.discard()
    response = await idempotency.finish(session, ImportRead.model_validate(batch), status_code=202)
    response.headers["Location"] = f"/v1/imports/{batch.id}"
    return response


@router.get(
    "/imports/{import_id}",
    response_model=ImportRead,
    responses=problem_responses(Unauthorized, Forbidden, ImportsAreNational, ImportNotFound),
)
async def read_import(import_id: uuid.UUID, session: SessionDep, caller: Importer) -> ImportRead:
    """Status and counts of an import of your agency."""
    batch = await service.read_import(session, import_id=import_id, agency=caller.agency)
    return ImportRead.model_validate(batch)


@router.get(
    "/imports/{import_id}/errors.csv",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"example": "line,field,reason\n7,nik,NIK serial 0000 ..."}},
            "description": "Every row not applied: line number in the file, field and reason",
        },
        **problem_responses(Unauthorized, Forbidden, ImportsAreNational, ImportNotFound),
    },
)
async def import_errors(
    import_id: uuid.UUID, request: Request, session: SessionDep, caller: Importer
) -> StreamingResponse:
    """The error report of an import as CSV (complete once the import has finished)."""
    batch = await service.read_import(session, import_id=import_id, agency=caller.agency)
    sessionmaker = get_runtime(request).sessionmaker

    async def body() -> AsyncIterator[str]:
        async with sessionmaker() as reader, reader.begin():
            result = await reader.stream(service.errors_query(import_id))
            yield service.render_error_rows([], header=True)
            async for part in result.partitions(5_000):
                yield service.render_error_rows(part, header=False)

    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(batch.filename).stem) or "import"
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{stem}.errors.csv"',
            "X-Import-Status": batch.status,
        },
    )
