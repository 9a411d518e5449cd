"""The consumer runner: typed handlers, inbox de-duplication, retries, dead-letter topic.

A service declares ``HANDLERS = {"registry.person.registered.v1": Handler(PersonRegistered,
on_person_registered)}``; the runner does everything else:

* records the event id in the inbox in the *same transaction* as the handler's effect, so a
  redelivered event changes nothing;
* validates ``data`` against the handler's pydantic model: a record that is not a CloudEvent or
  whose data does not fit is poison and goes straight to ``<topic>.dlq``;
* retries other failures with exponential back-off, then parks the event on ``<topic>.dlq`` with
  the error in its headers and carries on with the next event of the partition (later events
  of the same key pass it: order is traded for availability, the DLQ keeps the evidence);
* commits offsets only after the database commit (at-least-once delivery, exactly-once effect);
* on rebalance or shutdown, finishes the event in hand and commits what is done;
* after each fetch and each batch, records how many records of each partition it holds are not
  handled yet (up to the high watermark the broker last reported) in
  ``simpul_consumer_lag_records`` and :meth:`ConsumerRunner.lag`: 0 is caught up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError
from sqlalchemy import Column, DateTime, MetaData, PrimaryKeyConstraint, Table, Text, func, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import session_scope
from shared.envelope import CloudEvent, EnvelopeError, from_kafka
from shared.kafka import dlq_topic
from shared.observability import trace_context

__all__ = [
    "INBOX_TABLE",
    "ConsumerRunner",
    "Handler",
    "inbox_table",
    "prune_inbox",
]

INBOX_TABLE = "inbox_event"
log = logging.getLogger("shared.consumer")

P = TypeVar("P", bound=BaseModel)

CONSUMED = Counter(
    "simpul_consumer_events_total", "Events handled by outcome", ["consumer", "type", "outcome"]
)
LAG = Gauge(
    "simpul_consumer_lag_records",
    "Records of a partition the consumer has not handled yet, up to the high watermark the "
    "broker last reported, per partition the process holds (0: caught up)",
    ["consumer", "topic", "partition"],
)


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        INBOX_TABLE,
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("outcome", Text, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_id"),
    )


@dataclass(frozen=True)
class Handler(Generic[P]):
    """One event type's payload model and the function that applies it."""

    payload: type[P]
    apply: Callable[[AsyncSession, P, CloudEvent], Awaitable[None]]


class _Stopping(Exception):
    """Shutdown while an event could not be parked: leave its offset uncommitted."""


class _Poison(Exception):
    """An event that can never succeed: dead-letter it without retrying."""


_CLAIM_INBOX = text(
    f"INSERT INTO {INBOX_TABLE} (consumer, event_id, event_type, outcome) "
    "VALUES (:consumer, :event_id, :event_type, :outcome) "
    "ON CONFLICT DO NOTHING RETURNING 1"
)


class ConsumerRunner:
    def __init__(
        self,
        *,
        name: str,
        topics: list[str],
        handlers: Mapping[str, Handler[Any]],
        sessionmaker: async_sessionmaker[AsyncSession],
        bootstrap_servers: str,
        producer_factory: Callable[[], AIOKafkaProducer],
        max_attempts: int = 5,
        backoff_seconds: float = 0.2,
        client_id: str | None = None,
    ) -> None:
        self.name = name
        self.topics = topics
        self.handlers = handlers
        self._sessionmaker = sessionmaker
        self._bootstrap_servers = bootstrap_servers
        self._producer_factory = producer_factory
        self._dlq_producer: AIOKafkaProducer | None = None
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._client_id = client_id or name
        self._stopping = asyncio.Event()
        self._lag: dict[TopicPartition, int] = {}
        self.consumer: AIOKafkaConsumer | None = None

    def stop(self) -> None:
        self._stopping.set()

    def lag(self) -> dict[TopicPartition, int]:
        """Records not handled yet on each partition this runner holds, up to the high
        watermark of its last fetch: empty before the first fetch, after a rebalance took them
        all, and once stopped. 0 means caught up."""
        return dict(self._lag)

    async def run(self) -> None:
        """Consume until :meth:`stop`; reconnects while the broker is away."""
        try:
            await self._run()
        finally:
            self._set_lag({})

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self._bootstrap_servers,
                group_id=self.name,
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_interval_ms=300_000,
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
            )
            try:
                await self.consumer.start()
                await self._consume(self.consumer)
            except asyncio.CancelledError:
                raise
            except _Stopping:
                return
            except KafkaError as exc:
                log.warning(
                    "consumer.broker_error", extra={"consumer": self.name, "error": repr(exc)}
                )
                await self._pause(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await self.consumer.stop()
        if self._dlq_producer is not None:
            with contextlib.suppress(Exception):
                await self._dlq_producer.stop()

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while not self._stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=200)
            # Behind by the batch in hand too, while it is being handled.
            await self._measure_lag(consumer, {p: r[0].offset for p, r in batches.items() if r})
            for partition, records in batches.items():
                for record in records:
                    await self.process(record)
                    if self._stopping.is_set():
                        await self._commit(consumer, partition, record.offset + 1)
                        return
                if records:
                    await self._commit(consumer, partition, records[-1].offset + 1)
            await self._measure_lag(consumer, {})

    async def _measure_lag(
        self, consumer: AIOKafkaConsumer, in_hand: Mapping[TopicPartition, int]
    ) -> None:
        """Records not handled yet per partition: from the first record of the batch in hand
        (``in_hand``: partition -> its offset), else from the position, to the high watermark."""
        # High watermarks come with every fetch response, empty ones too; None: not fetched yet.
        marks = {tp: consumer.highwater(tp) for tp in consumer.assignment()}
        lag: dict[TopicPartition, int] = {}
        for partition, highwater in marks.items():
            if highwater is None:
                continue
            try:
                next_offset = in_hand.get(partition)
                if next_offset is None:
                    next_offset = await consumer.position(partition)
            except IllegalStateError:  # revoked by a rebalance meanwhile
                continue
            lag[partition] = max(highwater - next_offset, 0)
        self._set_lag(lag)

    def _set_lag(self, lag: dict[TopicPartition, int]) -> None:
        for gone in self._lag.keys() - lag.keys():
            with contextlib.suppress(KeyError):
                LAG.remove(self.name, gone.topic, str(gone.partition))
        for partition, behind in lag.items():
            LAG.labels(self.name, partition.topic, str(partition.partition)).set(behind)
        self._lag = lag

    async def _commit(
        self, consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
    ) -> None:
        try:
            await consumer.commit({partition: offset})
        except CommitFailedError:
            # The group rebalanced mid-batch; the new owner redoes it and the inbox absorbs it.
            log.warning(
                "consumer.commit_failed", extra={"consumer": self.name, "partition": str(partition)}
            )

    async def process(self, record: ConsumerRecord[bytes, bytes]) -> str:
        """Handle one record; return its outcome (handled, duplicate, ignored, dead_lettered)."""
        headers = tuple(record.headers or ())
        try:
            event = from_kafka(record.value, headers)
        except EnvelopeError as exc:
            await self._dead_letter(record, f"EnvelopeError: {exc}", event_id=None, event_type="?")
            return "dead_lettered"
        with trace_context(event.traceparent):
            handler = self.handlers.get(event.type)
            if handler is None:
                # Tolerant reader: a topic carries types this consumer does not need.
                outcome = "ignored"
                CONSUMED.labels(self.name, event.type, outcome).inc()
                return outcome
            error = await self._apply_with_retries(handler, event)
            if error is None:
                return "handled_or_duplicate"
            await self._dead_letter(record, error, event_id=event.id, event_type=event.type)
            return "dead_lettered"

    async def _apply_with_retries(self, handler: Handler[Any], event: CloudEvent) -> str | None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                outcome = await self._apply_once(handler, event)
                CONSUMED.labels(self.name, event.type, outcome).inc()
                log.info(
                    "consumer.event." + outcome,
                    extra={"consumer": self.name, "event_id": event.id, "type": event.type},
                )
                return None
            except _Poison as exc:
                return str(exc)
            except Exception as exc:
                log.warning(
                    "consumer.event.failed",
                    extra={
                        "consumer": self.name,
                        "event_id": event.id,
                        "type": event.type,
                        "attempt": attempt,
                        "error": repr(exc),
                    },
                )
                if attempt == self._max_attempts:
                    return f"{type(exc).__name__}: {exc}"
                await self._pause(self._backoff * 2 ** (attempt - 1))
        return None  # pragma: no cover - the loop always returns

    async def _apply_once(self, handler: Handler[Any], event: CloudEvent) -> str:
        try:
            payload = handler.payload.model_validate(event.data)
        except ValidationError as exc:
            raise _Poison(
                f"ValidationError: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}"
            ) from exc
        async with session_scope(self._sessionmaker) as session:
            claimed = await session.scalar(
                _CLAIM_INBOX,
                {
                    "consumer": self.name,
                    "event_id": event.id,
                    "event_type": event.type,
                    "outcome": "handled",
                },
            )
            if claimed is None:
                return "duplicate"
            await handler.apply(session, payload, event)
        return "handled"

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        error: str,
        *,
        event_id: str | None,
        event_type: str,
    ) -> None:
        headers = list(record.headers or ()) + [
            ("dlq_consumer", self.name.encode()),
            ("dlq_error", error[:4000].encode()),
            ("dlq_original_topic", record.topic.encode()),
            ("dlq_original_partition", str(record.partition).encode()),
            ("dlq_original_offset", str(record.offset).encode()),
        ]
        while True:
            try:
                producer = await self._ensure_dlq_producer()
                await producer.send_and_wait(
                    dlq_topic(record.topic), record.value, key=record.key, headers=headers
                )
                break
            except KafkaError as exc:
                # The partition must not move past an event that is neither handled nor parked.
                log.warning(
                    "consumer.dlq_failed", extra={"consumer": self.name, "error": repr(exc)}
                )
                if self._dlq_producer is not None:
                    with contextlib.suppress(Exception):
                        await self._dlq_producer.stop()
                    self._dlq_producer = None
                if self._stopping.is_set():
                    raise _Stopping from exc
                await self._pause(1.0)
        if event_id is not None:
            async with session_scope(self._sessionmaker) as session:
                await session.execute(
                    _CLAIM_INBOX,
                    {
                        "consumer": self.name,
                        "event_id": event_id,
                        "event_type": event_type,
                        "outcome": "dead_lettered",
                    },
                )
        CONSUMED.labels(self.name, event_type, "dead_lettered").inc()
        log.error(
            "consumer.event.dead_lettered",
            extra={
                "consumer": self.name,
                "event_id": event_id,
                "topic": record.topic,
                "error": error,
            },
        )

    async def _ensure_dlq_producer(self) -> AIOKafkaProducer:
        if self._dlq_producer is None:
            producer = self._producer_factory()
            await producer.start()
            self._dlq_producer = producer
        return self._dlq_producer

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


async def prune_inbox(session: AsyncSession, *, older_than_days: int) -> int:
    """Forget processed event ids older than the redelivery window (§5.6: keep them longer than
    the topic's retention plus the longest consumer outage you tolerate)."""
    result = await session.execute(
        text(
            f"DELETE FROM {INBOX_TABLE} WHERE ctid IN (SELECT ctid FROM {INBOX_TABLE} "
            "WHERE received_at < now() - make_interval(days => :days) LIMIT 5000)"
        ),
        {"days": older_than_days},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
