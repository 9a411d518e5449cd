"""Durable jobs and deadlines on a real PostgreSQL: scheduled with the change, run once, retried,
and never run twice by runners that share the table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import session_scope
from shared.jobs import (
    JOBS,
    Job,
    JobKind,
    JobRunner,
    RetryLater,
    cancel,
    reschedule,
    schedule,
)
from shared.observability import trace_context

from .conftest import OutboxDatabase

SERVICE = "jobtest"


async def record_effect(session: AsyncSession, job: Job) -> None:
    """The job's database effect, in the transaction that marks it done."""
    await session.execute(
        text("INSERT INTO effect (aggregate, seq, event_id) VALUES (:key, :attempt, :kind)"),
        {"key": job.key, "attempt": job.attempt, "kind": job.kind},
    )


async def always_fails(session: AsyncSession, job: Job) -> None:
    await record_effect(session, job)  # rolled back with the failure
    raise RuntimeError(f"attempt {job.attempt} failed")


def runner(db: OutboxDatabase, **kinds: JobKind) -> JobRunner:
    return JobRunner(service=SERVICE, sessionmaker=db.sessionmaker, kinds=kinds, poll_interval=0.05)


async def effects(db: OutboxDatabase) -> list[tuple[str, int]]:
    rows = await db.fetch("SELECT aggregate, seq FROM effect ORDER BY aggregate, seq")
    return [(row["aggregate"], row["seq"]) for row in rows]


async def job_row(db: OutboxDatabase, key: str) -> dict[str, object]:
    (row,) = await db.fetch(
        "SELECT status, attempts, last_error, run_at, traceparent FROM job WHERE key = $1", key
    )
    return dict(row)


class TestSchedule:
    async def test_a_rolled_back_change_schedules_nothing(self, outbox_db: OutboxDatabase) -> None:
        async def failing_change() -> None:
            async with session_scope(outbox_db.sessionmaker) as session:
                await schedule(session, kind="effect", key="k1")
                raise RuntimeError("the change fails")

        with pytest.raises(RuntimeError):
            await failing_change()
        assert await outbox_db.fetch("SELECT 1 FROM job") == []

    async def test_the_same_key_is_one_job(self, outbox_db: OutboxDatabase) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            first = await schedule(session, kind="effect", key="k1", payload={"n": 1})
            second = await schedule(session, kind="effect", key="k1", payload={"n": 2})
        assert (first, second) == (True, False)
        rows = await outbox_db.fetch("SELECT payload FROM job")
        assert [row["payload"] for row in rows] == ['{"n": 1}']

    async def test_the_job_carries_the_trace_of_the_change(self, outbox_db: OutboxDatabase) -> None:
        with trace_context(None) as traceparent:
            async with session_scope(outbox_db.sessionmaker) as session:
                await schedule(session, kind="effect", key="k1")
        assert (await job_row(outbox_db, "k1"))["traceparent"] == traceparent


class TestRunner:
    async def test_a_due_job_runs_once_and_its_effect_commits_with_it(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="k1")
        jobs = runner(outbox_db, effect=JobKind(record_effect))
        assert await jobs.run_due() == 1
        assert await jobs.run_due() == 0
        assert await effects(outbox_db) == [("k1", 1)]
        assert (await job_row(outbox_db, "k1"))["status"] == "done"

    async def test_a_deadline_waits_for_its_time_and_can_be_moved_or_cancelled(
        self, outbox_db: OutboxDatabase
    ) -> None:
        later = datetime.now(UTC) + timedelta(hours=1)
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="waits", run_at=later)
            await schedule(session, kind="effect", key="moved", run_at=later)
            await schedule(session, kind="effect", key="cancelled", delay=timedelta(0))
        jobs = runner(outbox_db, effect=JobKind(record_effect))
        async with session_scope(outbox_db.sessionmaker) as session:
            assert await reschedule(
                session, kind="effect", key="moved", run_at=datetime.now(UTC) - timedelta(1)
            )
            assert await cancel(session, kind="effect", key="cancelled")
        assert await jobs.run_due() == 1
        assert await effects(outbox_db) == [("moved", 1)]
        assert (await job_row(outbox_db, "waits"))["status"] == "pending"
        assert (await job_row(outbox_db, "cancelled"))["status"] == "cancelled"

    async def test_a_failing_job_is_retried_with_backoff_then_failed(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="flaky", key="k1")
        kind = JobKind(always_fails, max_attempts=3, backoff_seconds=0.2, backoff_max_seconds=0.2)
        jobs = runner(outbox_db, flaky=kind)
        assert await jobs.run_due() == 1
        retry = await job_row(outbox_db, "k1")
        assert (retry["status"], retry["attempts"], retry["last_error"]) == (
            "pending",
            1,
            "RuntimeError: attempt 1 failed",
        )
        assert await jobs.run_due() == 0, "not before its backoff"
        for attempt in (2, 3):
            await asyncio.sleep(0.3)
            assert await jobs.run_due() == 1, f"attempt {attempt}"
        failed = await job_row(outbox_db, "k1")
        assert (failed["status"], failed["attempts"]) == ("failed", 3)
        assert await effects(outbox_db) == [], "every failed attempt rolled its effect back"

    async def test_a_handler_can_keep_what_an_attempt_wrote_and_retry(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async def logs_each_attempt(session: AsyncSession, job: Job) -> None:
            await record_effect(session, job)  # e.g. a callback's attempt log
            raise RetryLater(f"receiver answered 503 on attempt {job.attempt}")

        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="callback", key="k1")
        kind = JobKind(logs_each_attempt, max_attempts=2, backoff_seconds=0.1)
        jobs = runner(outbox_db, callback=kind)
        assert await jobs.run_due() == 1
        await asyncio.sleep(0.2)
        assert await jobs.run_due() == 1
        assert await effects(outbox_db) == [("k1", 1), ("k1", 2)]
        failed = await job_row(outbox_db, "k1")
        assert (failed["status"], failed["last_error"]) == (
            "failed",
            "RetryLater: receiver answered 503 on attempt 2",
        )

    async def test_runners_sharing_the_table_run_each_job_once(
        self, outbox_db: OutboxDatabase
    ) -> None:
        keys = [f"k{n:03d}" for n in range(60)]
        async with session_scope(outbox_db.sessionmaker) as session:
            for key in keys:
                await schedule(session, kind="effect", key=key)

        async def slow_effect(session: AsyncSession, job: Job) -> None:
            await asyncio.sleep(0.01)
            await record_effect(session, job)

        runners = [runner(outbox_db, effect=JobKind(slow_effect)) for _ in range(3)]

        async def drain(jobs: JobRunner) -> None:
            while await jobs.run_due():
                pass

        await asyncio.gather(*(drain(jobs) for jobs in runners))
        assert await effects(outbox_db) == [(key, 1) for key in keys]

    async def test_a_job_whose_worker_died_is_taken_again_once_its_lease_ends(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="k1")
        # A worker claimed it and died: running, attempt 1, lease already over.
        await outbox_db.fetch(
            "UPDATE job SET status = 'running', attempts = 1, "
            "locked_until = now() - interval '1 second'"
        )
        assert await runner(outbox_db, effect=JobKind(record_effect)).run_due() == 1
        assert await effects(outbox_db) == [("k1", 2)]

    async def test_a_runner_that_lost_its_lease_commits_nothing(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="k1")
        taken_over = asyncio.Event()

        async def stalls(session: AsyncSession, job: Job) -> None:
            await record_effect(session, job)
            if job.attempt == 1:
                # Meanwhile the lease ran out and another runner took the job.
                await outbox_db.fetch("UPDATE job SET attempts = 2 WHERE key = 'k1'")
                taken_over.set()

        await runner(outbox_db, effect=JobKind(stalls)).run_due()
        assert taken_over.is_set()
        assert await effects(outbox_db) == []
        assert (await job_row(outbox_db, "k1"))["status"] == "running"

    async def test_the_worker_runs_deadlines_as_they_fall_due(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="soon", delay=timedelta(seconds=0.3))
        jobs = runner(outbox_db, effect=JobKind(record_effect))
        worker = asyncio.create_task(jobs.run())
        try:
            for _ in range(100):
                if await effects(outbox_db):
                    break
                await asyncio.sleep(0.05)
        finally:
            jobs.stop()
            await worker
        assert await effects(outbox_db) == [("soon", 1)]


async def test_metrics_count_jobs_by_state(outbox_db: OutboxDatabase) -> None:
    async with session_scope(outbox_db.sessionmaker) as session:
        await schedule(session, kind="effect", key="due")
        await schedule(session, kind="effect", key="later", delay=timedelta(hours=1))
        await schedule(session, kind="effect", key="broken")
    await outbox_db.fetch("UPDATE job SET status = 'failed' WHERE key = 'broken'")
    await runner(outbox_db, effect=JobKind(record_effect)).export_metrics()
    values = {
        state: JOBS.labels(SERVICE, "effect", state)._value.get()
        for state in ("due", "scheduled", "running", "failed")
    }
    assert values == {"due": 1, "scheduled": 1, "running": 0, "failed": 1}
