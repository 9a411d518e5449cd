"""Transactional outbox: events are written with the state change, and a relay publishes them.

A use case calls :func:`add_event` on the same session as its writes, so a rolled-back change
leaves no event and a committed one cannot lose its event. :class:`OutboxRelay` drains the table:

* takes a transaction-scoped advisory lock per aggregate key before it claims that key's rows
  (``FOR UPDATE``), so several relays may run and two never publish one aggregate's events in
  parallel or out of order (§5.3 of the reliability reference);
* selects by ``sent_at IS NULL``, never by an id watermark, so a transaction that commits after a
  higher id is still published (§5.2);
* publishes, waits for the broker's acks, then marks the batch sent in one statement and commits.
  A crash in between re-publishes the batch; consumers' inbox makes that harmless (§5.1);
* wakes on ``LISTEN/NOTIFY`` (one notification per inserting statement, folded per transaction by
  PostgreSQL) and polls anyway, because notifications are lost while the listener is away (§5.9);
* retries with back-off while the broker is down, and exports the backlog as a metric.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import sync_url
from shared.envelope import CloudEvent, KafkaRecord, new_event, to_kafka
from shared.observability import current_traceparent

__all__ = [
    "OUTBOX_TABLE",
    "OutboxRelay",
    "add_event",
    "notify_channel",
    "notify_trigger_sql",
    "outbox_table",
]

OUTBOX_TABLE = "outbox_event"
log = logging.getLogger("shared.outbox")

OUTBOX_BACKLOG = Gauge("simpul_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter("simpul_outbox_published_total", "Events published", ["service"])
OUTBOX_FAILURES = Counter("simpul_outbox_publish_failures_total", "Failed batches", ["service"])
OUTBOX_LAG = Histogram(
    "simpul_outbox_lag_seconds",
    "Commit-to-publish delay of events",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def outbox_table(metadata: MetaData) -> Table:
    """The outbox table on a service's own MetaData (it lands in that service's migrations)."""
    return Table(
        OUTBOX_TABLE,
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("event_id", Text, nullable=False, unique=True),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("envelope", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text),
        Index("ix_outbox_event_unsent", "id", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_event_unsent_key", "key", "id", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_event_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    )


def notify_channel(service: str) -> str:
    return f"outbox_{service}"


def notify_trigger_sql(service: str) -> list[str]:
    """DDL for the statement-level NOTIFY trigger; run it from the service's migration."""
    channel = notify_channel(service)
    return [
        f"""
        CREATE OR REPLACE FUNCTION {OUTBOX_TABLE}_notify() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{channel}', '');
            RETURN NULL;
        END $$
        """,
        f"""
        CREATE TRIGGER {OUTBOX_TABLE}_notify AFTER INSERT ON {OUTBOX_TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION {OUTBOX_TABLE}_notify()
        """,
    ]


async def add_event(
    session: AsyncSession,
    *,
    source: str,
    topic: str,
    key: str,
    type: str,
    data: Any,
    subject: str | None = None,
) -> CloudEvent:
    """Stage one event in the caller's transaction. ``key`` is the aggregate id."""
    event = new_event(
        source=source,
        type=type,
        subject=subject or key,
        data=data,
        traceparent=current_traceparent(),
    )
    await session.execute(
        text(
            f"INSERT INTO {OUTBOX_TABLE} (event_id, topic, key, event_type, envelope) "
            "VALUES (:event_id, :topic, :key, :event_type, CAST(:envelope AS jsonb))"
        ),
        {
            "event_id": event.id,
            "topic": topic,
            "key": key,
            "event_type": event.type,
            "envelope": event.model_dump_json(),
        },
    )
    return event


@dataclass(frozen=True)
class _Claimed:
    id: int
    key: str
    created_at: datetime
    record: KafkaRecord


# Claiming takes three statements, each with a fresh READ COMMITTED snapshot:
# 1. the keys of the oldest unsent rows;
# 2. a transaction-scoped advisory lock on each key no other relay holds;
# 3. the unsent rows of the locked keys, oldest first.
# Statement 3 runs after the locks are held, so it sees every row a previous holder of a key
# marked sent: a relay can never skip a key's older row and publish a newer one. (Checking the
# lock row by row inside one scan has that race: the holder commits mid-scan, the scanner has
# already filtered the key's older rows and then takes its newest. Found on Apache Kafka.)
_CANDIDATE_KEYS_SQL = f"""
SELECT key FROM {OUTBOX_TABLE} WHERE sent_at IS NULL ORDER BY id LIMIT $1
"""
_LOCK_KEYS_SQL = f"""
SELECT k FROM unnest($1::text[]) AS k
WHERE pg_try_advisory_xact_lock(hashtextextended('{OUTBOX_TABLE}:' || k, 0))
"""
_CLAIM_SQL = f"""
SELECT id, topic, key, envelope, created_at
FROM {OUTBOX_TABLE}
WHERE sent_at IS NULL AND key = ANY($1::text[])
ORDER BY id
LIMIT $2
FOR UPDATE
"""


class OutboxRelay:
    """Publishes a service's outbox to Kafka; run one or more per service."""

    def __init__(
        self,
        *,
        service: str,
        database_url: str,
        producer_factory: Callable[[], AIOKafkaProducer],
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(days=7),
        send_timeout: float = 20.0,
        after_publish: Callable[[Sequence[int]], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self._dsn = sync_url(database_url)
        self._producer_factory = producer_factory
        self._producer: AIOKafkaProducer | None = None
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._retention = retention
        # aiokafka keeps retrying an unreachable broker; the relay gives up on a batch after this.
        self._send_timeout = send_timeout
        # Test seam: runs after the broker acked a batch and before it is marked sent.
        self._after_publish = after_publish
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_housekeeping = datetime.min.replace(tzinfo=UTC)

    async def run(self) -> None:
        """Relay until :meth:`stop`; survives database and broker outages."""
        backoff = self._poll_interval
        while not self._stopping.is_set():
            try:
                await self._ensure_connections()
                published = await self.publish_batch()
                backoff = self._poll_interval
                if published >= self._batch_size:
                    continue
                await self._housekeeping()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database down: keep the rows, try again
                OUTBOX_FAILURES.labels(self.service).inc()
                log.warning(
                    "outbox.relay.failed",
                    extra={"service": self.service, "error": repr(exc), "retry_in": backoff},
                )
                await self._close_connection()
                await self._close_producer()
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            await self._sleep(self._poll_interval)
        await self.close()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def close(self) -> None:
        """Release connections of a relay driven by hand (:meth:`publish_batch`)."""
        await self._close_connection()
        await self._close_producer()

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; return how many events went out."""
        await self._ensure_connections()
        assert self._conn is not None
        claimed: list[_Claimed] = []
        try:
            async with self._conn.transaction():
                rows = await self._claim()
                if not rows:
                    return 0
                claimed = [self._to_claimed(row) for row in rows]
                await asyncio.wait_for(self._send_all(claimed), timeout=self._send_timeout)
                if self._after_publish is not None:
                    await self._after_publish([c.id for c in claimed])
                await self._conn.execute(
                    f"UPDATE {OUTBOX_TABLE} SET sent_at = now(), attempts = attempts + 1 "
                    "WHERE id = ANY($1::bigint[])",
                    [c.id for c in claimed],
                )
        except Exception as exc:
            if claimed:
                # After the claim rolled back (its row locks are gone), so operators see why.
                with contextlib.suppress(Exception):
                    await self._record_failure([c.id for c in claimed], repr(exc))
            raise
        now = datetime.now(UTC)
        for c in claimed:
            OUTBOX_LAG.labels(self.service).observe((now - c.created_at).total_seconds())
        OUTBOX_PUBLISHED.labels(self.service).inc(len(claimed))
        return len(claimed)

    async def _claim(self) -> list[asyncpg.Record]:
        assert self._conn is not None
        candidates = await self._conn.fetch(_CANDIDATE_KEYS_SQL, self._batch_size)
        keys = list(dict.fromkeys(row["key"] for row in candidates))
        if not keys:
            return []
        locked = [row["k"] for row in await self._conn.fetch(_LOCK_KEYS_SQL, keys)]
        if not locked:
            return []
        rows: list[asyncpg.Record] = await self._conn.fetch(_CLAIM_SQL, locked, self._batch_size)
        return rows

    async def backlog(self) -> int:
        await self._ensure_connections()
        assert self._conn is not None
        count: int = await self._conn.fetchval(
            f"SELECT count(*) FROM {OUTBOX_TABLE} WHERE sent_at IS NULL"
        )
        OUTBOX_BACKLOG.labels(self.service).set(count)
        return count

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = self._producer_factory()
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        if self._producer is not None:
            # stop() flushes pending batches, which never ends while the broker is away.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.stop(), timeout=5)
            self._producer = None

    async def _send_all(self, claimed: Sequence[_Claimed]) -> None:
        producer = await self._ensure_producer()
        # send() only queues; awaiting the futures together lets the producer batch per partition.
        futures = [
            await producer.send(
                c.record.topic, c.record.value, key=c.record.key, headers=c.record.headers
            )
            for c in claimed
        ]
        results = await asyncio.gather(*futures, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _record_failure(self, ids: list[int], error: str) -> None:
        assert self._conn is not None
        await self._conn.execute(
            f"UPDATE {OUTBOX_TABLE} SET attempts = attempts + 1, last_error = $2 "
            "WHERE id = ANY($1::bigint[])",
            ids,
            error[:2000],
        )

    @staticmethod
    def _to_claimed(row: asyncpg.Record) -> _Claimed:
        envelope = row["envelope"]
        event = CloudEvent.model_validate(
            orjson.loads(envelope) if isinstance(envelope, str | bytes) else envelope
        )
        return _Claimed(
            id=row["id"],
            key=row["key"],
            created_at=row["created_at"],
            record=to_kafka(event, topic=row["topic"], key=row["key"]),
        )

    async def _housekeeping(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_housekeeping < timedelta(seconds=30):
            return
        self._last_housekeeping = now
        await self.backlog()
        assert self._conn is not None
        # Sent rows are kept for replay and audit, then deleted in small batches (bloat, §5.10).
        await self._conn.execute(
            f"DELETE FROM {OUTBOX_TABLE} WHERE id IN (SELECT id FROM {OUTBOX_TABLE} "
            "WHERE sent_at < $1 LIMIT 5000)",
            now - self._retention,
        )

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self._dsn,
            timeout=10,
            server_settings={
                "application_name": f"simpul-{self.service}-relay",
                "statement_timeout": "30000",
                "lock_timeout": "10000",
                "idle_in_transaction_session_timeout": "120000",
            },
        )

    async def _ensure_connections(self) -> None:
        if self._conn is None or self._conn.is_closed():
            self._conn = await self._connect()
        if self._listener is None or self._listener.is_closed():
            self._listener = await self._connect()
            await self._listener.add_listener(notify_channel(self.service), self._on_notify)
            self._listener.add_termination_listener(self._on_listener_lost)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    def _on_listener_lost(self, *_: object) -> None:
        if not self._stopping.is_set():
            log.warning("outbox.listener.lost", extra={"service": self.service})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _close_connection(self) -> None:
        for conn in (self._conn, self._listener):
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
        self._conn = None
        self._listener = None
