"""BPS reconciliation imports: upload a DTSEN file, follow it, download its error report.

The upload is streamed to a temporary file (hashed on the way) and recorded as a queued import in
the request's transaction; the import itself starts once that transaction has committed, as a
task of this process, and runs the same pipeline as ``python -m registry import``. Clients poll
``GET /v1/imports/{id}`` until ``status`` is ``completed`` or ``failed``.
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
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, computed_field
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from registry import reconciliation
from registry.reconciliation import (
    ImportNotFound,
    ImportsAreNational,
    InvalidImportFile,
    Mode,
)
from registry.settings import RegistrySettings
from shared.auth import Caller, require_scope
from shared.errors import Forbidden, PayloadTooLarge, Unauthorized, problem_responses
from shared.idempotency import IdempotencyDep, IdempotencyKeyConflict, IdempotencyKeyInFlight
from shared.service import SessionDep, get_runtime

router = APIRouter(prefix="/v1", tags=["imports"])
log = logging.getLogger("registry.api.imports")

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
    problem = reconciliation.check_header(first_line.split(b"\n", 1)[0].rstrip(b"\r"))
    if problem is not None:
        await upload.discard()
        raise InvalidImportFile(problem, field="file")
    upload.sha256 = digest.hexdigest()
    return upload


def _start_after_commit(session: AsyncSession, request: Request, job: Any) -> None:
    """Run ``job()`` as a task once the request's transaction has committed (never if it rolls
    back: then ``job.discard()`` removes the upload)."""
    app = request.app
    tasks: set[asyncio.Task[None]] | None = getattr(app.state, "import_tasks", None)
    if tasks is None:
        tasks = app.state.import_tasks = set()
    loop = asyncio.get_running_loop()

    def started(_: Any) -> None:
        task = loop.create_task(job.run(), name=f"registry:import:{job.import_id}")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def rolled_back(_: Any) -> None:
        loop.create_task(job.upload.discard())

    event.listen(session.sync_session, "after_commit", started, once=True)
    event.listen(session.sync_session, "after_rollback", rolled_back, once=True)


class _Job:
    def __init__(
        self, settings: RegistrySettings, import_id: uuid.UUID, upload: _Upload, mode: Mode
    ) -> None:
        self.settings = settings
        self.import_id = import_id
        self.upload = upload
        self.mode = mode

    async def run(self) -> None:
        try:
            await reconciliation.execute_import(
                self.settings.database_url,
                self.import_id,
                self.upload.path,
                mode=self.mode,
                batch_size=self.settings.import_batch_size,
            )
        except Exception:
            log.exception("registry.import.crashed", extra={"import_id": str(self.import_id)})
        finally:
            await self.upload.discard()


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
async def create_import(
    request: Request,
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
    """Upload a DTSEN file; the import runs in the background (202). Poll the Location."""
    upload = await _save_upload(file)
    filename = Path(file.filename or "upload.csv").name[:200]
    try:
        fingerprint = _ImportRequest(filename=filename, sha256=upload.sha256, mode=mode)
        if (replay := await idempotency.begin(session, caller, fingerprint)) is not None:
            await upload.discard()
            return replay
        batch = await reconciliation.queue_import(
            session, filename=filename, sha256=upload.sha256, mode=mode, agency=caller.agency
        )
    except BaseException:
        await upload.discard()
        raise
    settings: RegistrySettings = request.app.state.settings
    _start_after_commit(session, request, _Job(settings, batch.id, upload, mode))
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
    batch = await reconciliation.get_import(session, import_id=import_id, agency=caller.agency)
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
    batch = await reconciliation.get_import(session, import_id=import_id, agency=caller.agency)
    sessionmaker = get_runtime(request).sessionmaker

    async def body() -> AsyncIterator[str]:
        async with sessionmaker() as reader, reader.begin():
            result = await reader.stream(reconciliation.errors_query(import_id))
            yield reconciliation.render_error_rows([], header=True)
            async for part in result.partitions(5_000):
                yield reconciliation.render_error_rows(part, header=False)

    stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(batch.filename).stem) or "import"
    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{stem}.errors.csv"',
            "X-Import-Status": batch.status,
        },
    )
