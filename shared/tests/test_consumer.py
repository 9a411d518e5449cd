"""The consumer runner against the real broker and PostgreSQL: inbox, retries, DLQ, offsets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from pydantic import BaseModel
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.consumer import ConsumerRunner, Handler
from shared.envelope import CloudEvent, KafkaRecord, new_event, to_kafka
from shared.kafka import dlq_topic
from shared.settings import SharedSettings
from shared.testing import eventually, publish_events, publish_records

from .conftest import OutboxDatabase, effect, read_topic, unique_topic


class Happened(BaseModel):
    aggregate: str
    seq: int


class Flaky:
    """A handler that fails its first ``failures`` calls per event, then applies the effect."""

    def __init__(self, failures: int = 0, poison_seq: int | None = None) -> None:
        self.failures = failures
        self.poison_seq = poison_seq
        self.calls: dict[str, int] = {}

    async def __call__(self, session: AsyncSession, payload: Happened, event: CloudEvent) -> None:
        self.calls[event.id] = self.calls.get(event.id, 0) + 1
        if payload.seq == self.poison_seq:
            raise ValueError(f"seq {payload.seq} can never be applied")
        if self.calls[event.id] <= self.failures:
            raise ConnectionError("a dependency blinked")
        await session.execute(
            insert(effect).values(aggregate=payload.aggregate, seq=payload.seq, event_id=event.id)
        )


def runner_for(
    settings: SharedSettings,
    db: OutboxDatabase,
    topic: str,
    handler: Flaky,
    factory: Callable[[], AIOKafkaProducer],
) -> ConsumerRunner:
    return ConsumerRunner(
        name=f"g-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        handlers={"test.happened.v1": Handler(Happened, handler)},
        sessionmaker=db.sessionmaker,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        producer_factory=factory,
        max_attempts=3,
        backoff_seconds=0.01,
    )


@contextlib.asynccontextmanager
async def consuming(runner: ConsumerRunner) -> AsyncIterator[ConsumerRunner]:
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, timeout=30)


def event(aggregate: str, seq: int) -> CloudEvent:
    return new_event(
        source="/test",
        type="test.happened.v1",
        subject=aggregate,
        data={"aggregate": aggregate, "seq": seq},
    )


def as_record(e: CloudEvent, topic: str) -> KafkaRecord:
    return to_kafka(e, topic=topic, key=e.data["aggregate"])


async def effects(db: OutboxDatabase) -> list[tuple[str, int]]:
    return [
        (r["aggregate"], r["seq"])
        for r in await db.fetch("SELECT aggregate, seq FROM effect ORDER BY id")
    ]


class TestConsumerRunner:
    async def test_redelivered_event_has_one_effect(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        once = event("a", 1)
        await publish_events(settings, topic, once, once, event("a", 2))
        async with consuming(runner_for(settings, outbox_db, topic, Flaky(), producer_factory)):
            await eventually(lambda: _has(effects(outbox_db), 2), what="two distinct effects")
            await asyncio.sleep(0.5)
        assert await effects(outbox_db) == [("a", 1), ("a", 2)]

    async def test_transient_failures_are_retried(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        handler = Flaky(failures=2)
        await publish_events(settings, topic, event("b", 1))
        async with consuming(runner_for(settings, outbox_db, topic, handler, producer_factory)):
            await eventually(lambda: _has(effects(outbox_db), 1), what="effect after retries")
        assert list(handler.calls.values()) == [3]
        assert await effects(outbox_db) == [("b", 1)]

    @pytest.mark.parametrize(
        ("poison", "reason"),
        [
            (
                (
                    b"not json",
                    [
                        ("ce_id", b"1"),
                        ("ce_source", b"/x"),
                        ("ce_type", b"test.happened.v1"),
                        ("ce_specversion", b"1.0"),
                    ],
                    b"p",
                ),
                "not JSON",
            ),
            ((b"{}", [("ce_type", b"test.happened.v1")], b"p"), "missing CloudEvents headers"),
            (None, "ValidationError"),  # a well-formed CloudEvent whose data does not fit the model
            ("handler-fails", "ValueError"),  # fails on every attempt
        ],
    )
    async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_moves_on(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
        poison: object,
        reason: str,
    ) -> None:
        topic = unique_topic()
        handler = Flaky(poison_seq=666)
        if poison is None:
            bad = new_event(
                source="/test",
                type="test.happened.v1",
                subject="p",
                data={"aggregate": "p", "seq": "many"},
            )
            poison_record = as_record(bad, topic)
        elif poison == "handler-fails":
            poison_record = as_record(event("p", 666), topic)
        else:
            value, headers, key = poison  # type: ignore[misc]
            poison_record = KafkaRecord(topic=topic, value=value, headers=headers, key=key)
        await publish_records(
            settings,
            as_record(event("p", 1), topic),
            poison_record,
            as_record(event("p", 2), topic),
        )
        async with consuming(runner_for(settings, outbox_db, topic, handler, producer_factory)):
            await eventually(
                lambda: _has(effects(outbox_db), 2), what="events after the poison applied"
            )
        assert await effects(outbox_db) == [("p", 1), ("p", 2)]
        parked = await read_topic(settings.kafka_bootstrap_servers, dlq_topic(topic), expected=1)
        assert len(parked) == 1
        _, headers, _ = parked[0]
        assert reason in headers["dlq_error"]
        assert headers["dlq_original_topic"] == topic
        assert headers["dlq_original_offset"] == "1"

    async def test_offsets_are_committed_only_after_the_database_commit(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The running consumer commits the offset only once the effect is committed (another
        connection sees it); a crash between the two redelivers the event, and the inbox turns
        the redelivery into a duplicate: one effect, then the offset is committed."""
        caplog.set_level(logging.INFO, logger="shared.consumer")
        topic = unique_topic()
        once = event("c", 1)
        await publish_events(settings, topic, once)
        handler = Flaky()
        crashed = runner_for(settings, outbox_db, topic, handler, producer_factory)
        attempted: list[tuple[TopicPartition, int, list[tuple[str, int]]]] = []

        async def commit_then_die(
            consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
        ) -> None:
            attempted.append((partition, offset, await effects(outbox_db)))
            raise _Crash("the process dies before the offset commit reaches the broker")

        crashed._commit = commit_then_die  # type: ignore[method-assign]
        with pytest.raises(_Crash):
            await asyncio.wait_for(crashed.run(), timeout=60)
        [(partition, offset, committed_effects)] = attempted
        assert committed_effects == [("c", 1)], "offset commit attempted before the effect commit"
        assert offset == 1
        assert await _committed_offset(settings, crashed.name, partition) is None

        restarted = runner_for(settings, outbox_db, topic, handler, producer_factory)
        restarted.name = crashed.name  # same consumer group, which never committed an offset
        async with consuming(restarted):
            await eventually(
                lambda: _committed(settings, crashed.name, partition),
                what="offset committed after the redelivery",
            )
        assert await _committed_offset(settings, crashed.name, partition) == offset
        redelivered = [
            r
            for r in caplog.records
            if r.getMessage() == "consumer.event.duplicate"
            and getattr(r, "event_id", None) == once.id
        ]
        assert len(redelivered) == 1, "the event was redelivered after the crash"
        assert handler.calls == {once.id: 1}, "the inbox kept the redelivery from the handler"
        assert await effects(outbox_db) == [("c", 1)]
        outcomes = await outbox_db.fetch(
            "SELECT outcome FROM inbox_event WHERE consumer = $1", crashed.name
        )
        assert [r["outcome"] for r in outcomes] == ["handled"]


class _Crash(Exception):
    """Stands for the process dying: nothing in the runner catches it."""


async def _committed_offset(
    settings: SharedSettings, group: str, partition: TopicPartition
) -> int | None:
    # A plain consumer's committed(), not the admin client: Tansu answers aiokafka's admin
    # OffsetFetch in a form the admin client cannot decode.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(partition)
    finally:
        await consumer.stop()


async def _committed(settings: SharedSettings, group: str, partition: TopicPartition) -> bool:
    return bool(await _committed_offset(settings, group, partition))


async def _has(rows: object, n: int) -> bool:
    return len(await rows) >= n  # type: ignore[misc, arg-type]


class Slow(Flaky):
    async def __call__(self, session: AsyncSession, payload: Happened, event: CloudEvent) -> None:
        await asyncio.sleep(0.3)
        await super().__call__(session, payload, event)


class TestRebalance:
    async def test_a_consumer_joining_mid_batch_causes_no_double_effect(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        events = [event(f"k{n % 6}", n) for n in range(24)]
        await publish_events(settings, topic, *events)
        first = runner_for(settings, outbox_db, topic, Slow(), producer_factory)
        second = runner_for(settings, outbox_db, topic, Slow(), producer_factory)
        second.name = first.name  # the same consumer group
        async with consuming(first):
            await eventually(lambda: _has(effects(outbox_db), 2), what="first consumer busy")
            async with consuming(second):
                await eventually(
                    lambda: _has(effects(outbox_db), len(events)), within=120, what="all applied"
                )
        applied = await effects(outbox_db)
        assert sorted(seq for _, seq in applied) == list(range(len(events))), (
            "each event exactly once"
        )


class Gated(Flaky):
    """Holds each event until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self, session: AsyncSession, payload: Happened, event: CloudEvent) -> None:
        await self.gate.wait()
        await super().__call__(session, payload, event)


def _lag_samples(consumer: str) -> dict[tuple[str, str], float]:
    return {
        (sample.labels["topic"], sample.labels["partition"]): sample.value
        for metric in REGISTRY.collect()
        if metric.name == "simpul_consumer_lag_records"
        for sample in metric.samples
        if sample.labels["consumer"] == consumer
    }


class TestLag:
    async def test_the_backlog_is_measured_until_it_is_handled_and_forgotten_on_stop(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        await publish_events(settings, topic, *(event("lag", seq) for seq in range(3)))
        handler = Gated()
        runner = runner_for(settings, outbox_db, topic, handler, producer_factory)
        async with consuming(runner):
            # The first batch is in hand, held at the gate: all three records are still behind.
            await eventually(
                lambda: _async(sum(runner.lag().values()) == 3), what="the backlog measured"
            )
            assert sum(_lag_samples(runner.name).values()) == 3
            assert {tp.topic for tp in runner.lag()} == {topic}
            handler.gate.set()
            await eventually(lambda: _has(effects(outbox_db), 3), what="the backlog handled")
            await eventually(
                lambda: _async(bool(runner.lag()) and not any(runner.lag().values())),
                what="caught up",
            )
            assert set(_lag_samples(runner.name).values()) == {0}
        assert runner.lag() == {}
        assert _lag_samples(runner.name) == {}, "a stopped runner still reports its lag"


async def _async(value: bool) -> bool:
    return value
