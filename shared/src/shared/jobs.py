"""Durable jobs and deadlines: work a change schedules, done later by a worker process.

A job is a row of the service's own ``job`` table, written by :func:`schedule` in the same
transaction as the change that needs it: a rolled-back change schedules nothing, a committed one
is never lost. A deadline is a job whose ``run_at`` lies ahead (a referral that expires, a
complaint whose SLA runs out); :func:`cancel` and :func:`reschedule` act on it while it waits.
``(kind, key)`` is unique, so scheduling the same work twice is one job.

:class:`JobRunner` runs where the outbox relay runs (``worker``, and ``serve`` in the embedded
default), never in an API process. Any number of runners may share a table::

    claim  UPDATE job SET status = 'running', attempts + 1, locked_until = now() + lease
           WHERE id IN (due rows ... FOR UPDATE SKIP LOCKED)        -- one transaction
    run    handler(session, job), then mark it done in that same session  -- one transaction
    fail   pending again at now() + backoff with jitter, or 'failed' after max_attempts

The handler's database effect and the job's completion commit together, so a job's effect on
the database happens once: if a runner loses its lease (it stalled past ``lease_seconds`` and
another runner took the job), its completion finds a different attempt number and rolls the
effect back. Work outside the database (an HTTP callback) is at least once; such a handler must
be idempotent. A long job keeps its lease by a heartbeat while it runs.

Metrics: ``simpul_jobs{service, kind, state}`` with ``state`` in ``due``, ``scheduled``,
``running``, ``failed``; ``simpul_job_runs_total{service, kind, outcome}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter, Gauge
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import session_scope
from shared.observability import current_traceparent, trace_context

__all__ = [
    "JOB_TABLE",
    "Job",
    "JobHandler",
    "JobKind",
    "JobRunner",
    "RetryLater",
    "cancel",
    "job_table",
    "nominal_backoff",
    "prune_jobs",
    "reschedule",
    "schedule",
]

JOB_TABLE = "job"
log = logging.getLogger("shared.jobs")

JOBS = Gauge(
    "simpul_jobs", "Jobs by state (due: waiting past run_at)", ["service", "kind", "state"]
)
JOB_RUNS = Counter(
    "simpul_job_runs_total", "Job attempts by outcome", ["service", "kind", "outcome"]
)
_STATES = ("due", "scheduled", "running", "failed")


def job_table(metadata: MetaData) -> Table:
    return Table(
        JOB_TABLE,
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("kind", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("payload", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("status", Text, nullable=False, server_default=text("'pending'")),
        Column("run_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("locked_until", DateTime(timezone=True)),
        Column("last_error", Text),
        Column("traceparent", Text),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("finished_at", DateTime(timezone=True)),
        UniqueConstraint("kind", "key"),
        CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed', 'cancelled')", name="status"
        ),
        # What runners look for: waiting or leased jobs by due time.
        Index(
            "ix_job_due",
            "run_at",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
    )


@dataclass(frozen=True)
class Job:
    """A claimed job, as its handler sees it.

    The handler's ``session`` begins its transaction at its first statement, and that
    transaction ends with the job. A handler that calls out (HTTP) reads what it needs first in
    a short transaction of its own (``session_scope(job.sessionmaker)``), so no transaction
    stays open while it waits for the other side.
    """

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    run_at: datetime
    sessionmaker: async_sessionmaker[AsyncSession] = field(repr=False, compare=False)

    @property
    def last_attempt(self) -> bool:
        """True when a failure now ends the job as ``failed`` (a handler may record why)."""
        return self.attempt >= self.max_attempts


JobHandler = Callable[[AsyncSession, Job], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    """How one kind of job is run: its handler and its retry policy."""

    handler: JobHandler
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    lease_seconds: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Wait after failed attempt ``attempt``: never shorter than :func:`nominal_backoff`,
        up to a quarter longer so the retries of many jobs spread out."""
        nominal = nominal_backoff(attempt, base=self.backoff_seconds, cap=self.backoff_max_seconds)
        return nominal * (1 + random.random() / 4)


def nominal_backoff(attempt: int, *, base: float, cap: float) -> float:
    """Nominal wait after failed attempt number ``attempt`` (1-based): base, 2 base, 4 base...
    up to ``cap``."""
    return float(min(cap, base * 2 ** (attempt - 1)))


async def schedule(
    session: AsyncSession,
    *,
    kind: str,
    key: str,
    payload: Mapping[str, Any] | None = None,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
) -> bool:
    """Schedule ``kind`` for ``key`` in the caller's transaction; False when it already exists
    (whatever its state: the key says this work was asked for once)."""
    if run_at is not None and delay is not None:
        raise ValueError("give run_at or delay, not both")
    when = "now()" if run_at is None else ":run_at"
    if delay is not None:
        when = "now() + make_interval(secs => :delay)"
    result = await session.execute(
        text(
            f"INSERT INTO {JOB_TABLE} (kind, key, payload, run_at, traceparent) "
            f"VALUES (:kind, :key, CAST(:payload AS jsonb), {when}, :traceparent) "
            "ON CONFLICT (kind, key) DO NOTHING"
        ),
        {
            "kind": kind,
            "key": key,
            "payload": orjson.dumps(dict(payload or {})).decode(),
            "run_at": run_at,
            "delay": delay.total_seconds() if delay is not None else None,
            "traceparent": current_traceparent(),
        },
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def cancel(session: AsyncSession, *, kind: str, key: str) -> bool:
    """Cancel a job that has not started (a deadline made moot); False if there is none."""
    result = await session.execute(
        text(
            f"UPDATE {JOB_TABLE} SET status = 'cancelled', finished_at = now() "
            "WHERE kind = :kind AND key = :key AND status = 'pending'"
        ),
        {"kind": kind, "key": key},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reschedule(session: AsyncSession, *, kind: str, key: str, run_at: datetime) -> bool:
    """Move a job that has not started to ``run_at`` (a deadline extended); False if none."""
    result = await session.execute(
        text(
            f"UPDATE {JOB_TABLE} SET run_at = :run_at "
            "WHERE kind = :kind AND key = :key AND status = 'pending'"
        ),
        {"kind": kind, "key": key, "run_at": run_at},
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def prune_jobs(session: AsyncSession, *, older_than_days: int) -> int:
    """Forget finished jobs (done or cancelled) after a while; failed ones stay for an operator."""
    result = await session.execute(
        text(
            f"DELETE FROM {JOB_TABLE} WHERE ctid IN (SELECT ctid FROM {JOB_TABLE} "
            "WHERE status IN ('done', 'cancelled') "
            "AND finished_at < now() - make_interval(days => :days) LIMIT 5000)"
        ),
        {"days": older_than_days},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


class RetryLater(Exception):
    """Raised by a handler whose work this time is worth keeping (an attempt it logged) but not
    finished: what it wrote commits, and the job runs again after its backoff (or ends
    ``failed`` if this was its last attempt). Any other exception rolls the attempt back."""


class _LeaseLost(Exception):
    """Another runner took the job meanwhile: this attempt's effects must not commit."""


_CLAIM = text(
    f"""
    UPDATE {JOB_TABLE} AS job
    SET status = 'running', attempts = job.attempts + 1,
        locked_until = now() + make_interval(secs => lease.seconds)
    FROM unnest(CAST(:kinds AS text[]), CAST(:leases AS float8[])) AS lease(kind, seconds)
    WHERE lease.kind = job.kind AND job.id IN (
        SELECT id FROM {JOB_TABLE}
        WHERE kind = ANY(CAST(:kinds AS text[]))
          AND ((status = 'pending' AND run_at <= now())
               OR (status = 'running' AND locked_until < now()))
        ORDER BY run_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED)
    RETURNING job.id, job.kind, job.key, job.payload, job.attempts, job.run_at, job.traceparent
    """
)
_HEARTBEAT = text(
    f"UPDATE {JOB_TABLE} SET locked_until = now() + make_interval(secs => :lease) "
    "WHERE id = :id AND attempts = :attempt AND status = 'running'"
)
_DONE = text(
    f"UPDATE {JOB_TABLE} SET status = 'done', finished_at = now(), locked_until = NULL, "
    "last_error = NULL WHERE id = :id AND attempts = :attempt AND status = 'running'"
)
_RETRY = text(
    f"UPDATE {JOB_TABLE} SET status = 'pending', locked_until = NULL, last_error = :error, "
    "run_at = now() + make_interval(secs => :delay) "
    "WHERE id = :id AND attempts = :attempt AND status = 'running'"
)
_FAILED = text(
    f"UPDATE {JOB_TABLE} SET status = 'failed', finished_at = now(), locked_until = NULL, "
    "last_error = :error WHERE id = :id AND attempts = :attempt AND status = 'running'"
)
_COUNTS = text(
    f"""
    SELECT kind,
           count(*) FILTER (WHERE status = 'pending' AND run_at <= now()) AS due,
           count(*) FILTER (WHERE status = 'pending' AND run_at > now()) AS scheduled,
           count(*) FILTER (WHERE status = 'running') AS running,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM {JOB_TABLE} WHERE kind = ANY(CAST(:kinds AS text[])) GROUP BY kind
    """
)


class JobRunner:
    """Claims due jobs of ``kinds`` and runs them, ``batch_size`` at a time, concurrently."""

    def __init__(
        self,
        *,
        service: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        kinds: Mapping[str, JobKind],
        batch_size: int = 10,
        poll_interval: float = 1.0,
        metrics_interval: float = 15.0,
    ) -> None:
        self.service = service
        self.sessionmaker = sessionmaker
        self.kinds = dict(kinds)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.metrics_interval = metrics_interval
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Until :meth:`stop`: run what is due, sleep ``poll_interval`` when nothing was."""
        loop = asyncio.get_running_loop()
        next_metrics = loop.time()
        while not self._stopping.is_set():
            ran = 0
            try:
                if loop.time() >= next_metrics:
                    next_metrics = loop.time() + self.metrics_interval
                    await self.export_metrics()
                ran = await self.run_due()
            except Exception as exc:  # the database went away: try again next round
                log.warning("jobs.round_failed", extra={"error": repr(exc)})
            if ran:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.poll_interval)

    async def run_due(self) -> int:
        """Claim up to ``batch_size`` due jobs and run them; how many were claimed."""
        names = list(self.kinds)
        async with session_scope(self.sessionmaker) as session:
            claimed = (
                await session.execute(
                    _CLAIM,
                    {
                        "kinds": names,
                        "leases": [self.kinds[name].lease_seconds for name in names],
                        "limit": self.batch_size,
                    },
                )
            ).all()
        await asyncio.gather(*(self._run(row) for row in claimed))
        return len(claimed)

    async def export_metrics(self) -> None:
        async with session_scope(self.sessionmaker) as session:
            rows = (await session.execute(_COUNTS, {"kinds": list(self.kinds)})).all()
        counts = {row.kind: row for row in rows}
        for kind in self.kinds:
            row = counts.get(kind)
            for state in _STATES:
                value = getattr(row, state) if row is not None else 0
                JOBS.labels(self.service, kind, state).set(value)

    async def _run(self, row: Any) -> None:
        kind = self.kinds[row.kind]
        job = Job(
            id=row.id,
            kind=row.kind,
            key=row.key,
            payload=row.payload,
            attempt=row.attempts,
            max_attempts=kind.max_attempts,
            run_at=row.run_at,
            sessionmaker=self.sessionmaker,
        )
        with trace_context(row.traceparent):
            if job.attempt > job.max_attempts:
                # Its last attempt was leased and never finished (the worker died).
                await self._finish(job, _FAILED, error="the worker running its last attempt died")
                return
            heartbeat = asyncio.create_task(self._keep_lease(job, kind.lease_seconds))
            try:
                async with session_scope(self.sessionmaker) as session:
                    ending: Any = _DONE
                    values: dict[str, Any] = {}
                    try:
                        await kind.handler(session, job)
                    except RetryLater as retry:
                        ending, values = self._ending_of_failure(job, kind, retry)
                    ended = await session.execute(
                        ending, {"id": job.id, "attempt": job.attempt, **values}
                    )
                    if not ended.rowcount:  # type: ignore[attr-defined]
                        raise _LeaseLost
            except _LeaseLost:
                log.warning("jobs.lease_lost", extra=_describe(job))
                JOB_RUNS.labels(self.service, job.kind, "lease_lost").inc()
                return
            except Exception as exc:
                ending, values = self._ending_of_failure(job, kind, exc)
                await self._finish(job, ending, **values)
                return
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
        outcome = "done" if ending is _DONE else "retry" if ending is _RETRY else "failed"
        JOB_RUNS.labels(self.service, job.kind, outcome).inc()
        if ending is _DONE:
            log.info("jobs.done", extra=_describe(job))

    def _ending_of_failure(
        self, job: Job, kind: JobKind, exc: Exception
    ) -> tuple[Any, dict[str, Any]]:
        """Retry after the backoff, or fail on the last attempt; logged and counted."""
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if job.last_attempt:
            log.error("jobs.failed", extra={**_describe(job), "error": error})
            return _FAILED, {"error": error}
        delay = kind.backoff(job.attempt)
        log.warning("jobs.retry", extra={**_describe(job), "error": error, "in_seconds": delay})
        return _RETRY, {"error": error, "delay": delay}

    async def _finish(self, job: Job, statement: Any, **values: Any) -> None:
        async with session_scope(self.sessionmaker) as session:
            await session.execute(statement, {"id": job.id, "attempt": job.attempt, **values})
        JOB_RUNS.labels(self.service, job.kind, "failed" if statement is _FAILED else "retry").inc()

    async def _keep_lease(self, job: Job, lease_seconds: float) -> None:
        while True:
            await asyncio.sleep(lease_seconds / 3)
            with contextlib.suppress(Exception):  # the next beat, or the lease, decides
                async with session_scope(self.sessionmaker) as session:
                    await session.execute(
                        _HEARTBEAT, {"id": job.id, "attempt": job.attempt, "lease": lease_seconds}
                    )


def _describe(job: Job) -> dict[str, Any]:
    return {"job_id": job.id, "kind": job.kind, "key": job.key, "attempt": job.attempt}
