"""The job that runs a staged import, on the shared job runner (:mod:`shared.jobs`)."""

from __future__ import annotations

import uuid

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import (
    ImportBatch,
)
from registry.reconciliation.pipeline import execute_import
from registry.settings import RegistrySettings
from shared.db import session_scope
from shared.jobs import Job, JobKind

__all__ = ["IMPORT_JOB", "import_job"]

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
