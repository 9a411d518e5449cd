"""The outbox relay against real PostgreSQL and the real broker, including its failure modes
(reference: performance-and-reliability.md §5)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared.db import session_scope, sync_url
from shared.outbox import OutboxRelay, add_event
from shared.settings import SharedSettings
from shared.testing import BrokerHandle, eventually

from .conftest import SERVICE, OutboxDatabase, read_topic, unique_topic


async def stage(db: OutboxDatabase, topic: str, events: Sequence[tuple[str, int]]) -> None:
    """Write ``(aggregate, seq)`` events, one transaction each, as use cases do."""
    for aggregate, seq in events:
        async with session_scope(db.sessionmaker) as session:
            await add_event(
                session,
                source="/test",
                topic=topic,
                key=aggregate,
                type="test.happened.v1",
                data={"aggregate": aggregate, "seq": seq},
            )


def make_relay(
    settings: SharedSettings, factory: Callable[[], AIOKafkaProducer], **kwargs: object
) -> OutboxRelay:
    return OutboxRelay(
        service=SERVICE,
        database_url=settings.database_url,
        producer_factory=factory,
        poll_interval=0.2,
        send_timeout=5,
        **kwargs,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def relaying(relay: OutboxRelay) -> AsyncIterator[OutboxRelay]:
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=30)


async def unsent(db: OutboxDatabase) -> int:
    rows = await db.fetch("SELECT count(*) AS n FROM outbox_event WHERE sent_at IS NULL")
    return int(rows[0]["n"])


def first_deliveries(
    records: list[tuple[str, dict[str, str], bytes]],
) -> list[tuple[str, dict[str, str], bytes]]:
    """The records a de-duplicating consumer applies: each CloudEvent id once, first copy."""
    seen: set[str] = set()
    first = []
    for record in records:
        if record[1]["ce_id"] not in seen:
            seen.add(record[1]["ce_id"])
            first.append(record)
    return first


def sequences_by_key(records: list[tuple[str, dict[str, str], bytes]]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for key, _, value in records:
        seen[key].append(orjson.loads(value)["seq"])
    return seen


class TestRelay:
    async def test_publishes_committed_events_as_cloudevents(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        await stage(outbox_db, topic, [("p-1", 1), ("p-2", 1)])
        with contextlib.suppress(RuntimeError):
            async with session_scope(outbox_db.sessionmaker) as session:
                await add_event(
                    session,
                    source="/test",
                    topic=topic,
                    key="rolled-back",
                    type="t.v1",
                    data={"seq": 0},
                )
                raise RuntimeError("the use case failed after staging its event")
        async with relaying(make_relay(settings, producer_factory)):
            await eventually(lambda: _zero(unsent(outbox_db)), what="outbox drained")
        records = await read_topic(settings.kafka_bootstrap_servers, topic, expected=2)
        assert sorted(key for key, _, _ in records) == ["p-1", "p-2"]
        headers = records[0][1]
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_type"] == "test.happened.v1"
        assert headers["content-type"] == "application/json"
        assert {"ce_id", "ce_source", "ce_time", "ce_subject"} <= headers.keys()

    async def test_transactions_committing_out_of_id_order_are_not_skipped(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        slow = await asyncpg.connect(sync_url(outbox_db.url))
        try:
            slow_tx = slow.transaction()
            await slow_tx.start()
            # The slow writer takes the lower id first and commits last.
            await slow.execute(
                "INSERT INTO outbox_event (event_id, topic, key, event_type, envelope) VALUES "
                "('slow-1', $1, 'slow', 't.v1', $2::jsonb)",
                topic,
                orjson.dumps(_envelope("slow-1", {"aggregate": "slow", "seq": 1})).decode(),
            )
            await stage(outbox_db, topic, [("fast", 1)])
            async with relaying(make_relay(settings, producer_factory)):
                await eventually(lambda: _zero(unsent(outbox_db)), what="fast event published")
                await slow_tx.commit()
                await eventually(
                    lambda: _zero(unsent(outbox_db)), what="late-committed event published"
                )
        finally:
            await slow.close()
        records = await read_topic(settings.kafka_bootstrap_servers, topic, expected=2)
        assert sorted(key for key, _, _ in records) == ["fast", "slow"]

    async def test_two_relays_keep_per_aggregate_order(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        aggregates, per_aggregate = 50, 40
        rows = [(f"agg-{a}", seq) for seq in range(per_aggregate) for a in range(aggregates)]
        async with session_scope(outbox_db.sessionmaker) as session:
            for aggregate, seq in rows:
                await add_event(
                    session,
                    source="/test",
                    topic=topic,
                    key=aggregate,
                    type="t.v1",
                    data={"aggregate": aggregate, "seq": seq},
                )
        first = make_relay(settings, producer_factory, batch_size=37)
        second = make_relay(settings, producer_factory, batch_size=23)
        async with relaying(first), relaying(second):
            await eventually(
                lambda: _zero(unsent(outbox_db)), what="both relays drained the outbox"
            )
        records = await read_topic(settings.kafka_bootstrap_servers, topic, expected=len(rows))
        by_key = sequences_by_key(records)
        assert len(by_key) == aggregates
        for key, seqs in by_key.items():
            assert seqs == sorted(seqs), f"{key} out of order: {seqs}"
            assert sorted(set(seqs)) == list(range(per_aggregate))

    async def test_lost_listen_connection_falls_back_to_polling(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        relay = make_relay(settings, producer_factory)
        async with relaying(relay):
            await eventually(lambda: _truthy(relay._listener is not None), what="relay listening")
            killed = await outbox_db.fetch(
                "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity "
                "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
            )
            assert killed
            assert all(row["ok"] for row in killed)
            await stage(outbox_db, topic, [("after-listen-loss", 1)])
            await eventually(lambda: _zero(unsent(outbox_db)), what="published by polling")
        records = await read_topic(settings.kafka_bootstrap_servers, topic, expected=1)
        assert [key for key, _, _ in records] == ["after-listen-loss"]

    async def test_crash_between_publish_and_mark_sent_republishes(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
    ) -> None:
        topic = unique_topic()
        await stage(outbox_db, topic, [("x", 1), ("x", 2)])

        async def crash(_: Sequence[int]) -> None:
            raise SystemExit("relay killed after the broker acked, before marking sent")

        crashed = make_relay(settings, producer_factory, after_publish=crash)
        try:
            with pytest.raises(SystemExit):
                await crashed.publish_batch()
        finally:
            await crashed.close()
        assert await unsent(outbox_db) == 2, "nothing may be marked sent by the crashed relay"
        async with relaying(make_relay(settings, producer_factory)):
            await eventually(lambda: _zero(unsent(outbox_db)), what="republished after restart")
        records = await read_topic(settings.kafka_bootstrap_servers, topic, expected=4)
        # At-least-once: each event twice, same CloudEvent id both times (consumers dedupe on it).
        ids = [headers["ce_id"] for _, headers, _ in records]
        assert len(ids) == 4
        assert len(set(ids)) == 2
        assert sequences_by_key(records)["x"] == [1, 2, 1, 2]


class TestBrokerOutage:
    async def test_events_written_while_the_broker_is_down_are_delivered_in_order(
        self,
        outbox_db: OutboxDatabase,
        settings: SharedSettings,
        producer_factory: Callable[[], AIOKafkaProducer],
        broker: BrokerHandle,
    ) -> None:
        if not broker.can_restart:
            pytest.skip("an external broker cannot be stopped by the tests")
        topic = unique_topic()
        relay = make_relay(settings, producer_factory)
        async with relaying(relay):
            await stage(outbox_db, topic, [("before", 1)])
            await eventually(lambda: _zero(unsent(outbox_db)), what="published before the outage")
            broker.stop()
            try:
                events = [(f"agg-{a}", seq) for seq in range(10) for a in range(5)]
                await stage(outbox_db, topic, events)
                await eventually(
                    lambda: _truthy_rows(
                        outbox_db, "SELECT 1 FROM outbox_event WHERE last_error IS NOT NULL"
                    ),
                    what="the relay recording why it is stuck",
                )
                assert await unsent(outbox_db) == len(events), (
                    "nothing can be sent while the broker is down"
                )
            finally:
                broker.start_again()
            await eventually(
                lambda: _zero(unsent(outbox_db)),
                within=120,
                what="backlog drained after the outage",
            )
        expected = len(events) + (1 if broker.keeps_data_across_restart else 0)
        records = await read_topic(
            settings.kafka_bootstrap_servers, topic, expected=expected, distinct=True
        )
        # A batch that timed out during the outage may still have reached the broker and be
        # sent again: at-least-once. What consumers see, first deliveries, must be in order.
        by_key = sequences_by_key(first_deliveries(records))
        for a in range(5):
            assert by_key[f"agg-{a}"] == list(range(10))


def _envelope(event_id: str, data: dict[str, object]) -> dict[str, object]:
    return {
        "id": event_id,
        "source": "/test",
        "type": "t.v1",
        "specversion": "1.0",
        "time": "2026-11-25T00:00:00Z",
        "subject": "slow",
        "datacontenttype": "application/json",
        "traceparent": None,
        "data": data,
    }


async def _zero(count: asyncio.Future[int] | object) -> bool:
    return await count == 0  # type: ignore[misc]


async def _truthy(value: object) -> object:
    return value


async def _truthy_rows(db: OutboxDatabase, sql: str) -> bool:
    return bool(await db.fetch(sql))
