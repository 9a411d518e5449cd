"""A small database of shared's own tables (outbox, inbox, idempotency keys, jobs, an effect
table).

Built with ``create_all``: shared has no migration history of its own; its tables reach the
services through their Alembic migrations, which the services' tests run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Column, Integer, MetaData, Table, Text, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.consumer import inbox_table
from shared.db import create_engine, create_sessionmaker, make_metadata, sync_url
from shared.idempotency import idempotency_table
from shared.jobs import job_table
from shared.kafka import create_producer
from shared.outbox import notify_trigger_sql, outbox_table
from shared.settings import SharedSettings
from shared.testing import BrokerHandle, DatabaseServer

metadata: MetaData = make_metadata()
outbox_table(metadata)
inbox_table(metadata)
idempotency_table(metadata)
job_table(metadata)
effect = Table(
    "effect",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("aggregate", Text, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("event_id", Text, nullable=False),
)
SERVICE = "sharedtest"


@dataclass
class OutboxDatabase:
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(sync_url(self.url))
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


@pytest_asyncio.fixture
async def outbox_db(database_server: DatabaseServer) -> AsyncIterator[OutboxDatabase]:
    """A fresh database per test: relays in different tests must not see each other's rows."""
    url = database_server.url(await database_server.create_database("shared"))
    engine = create_engine(url, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        for statement in notify_trigger_sql(SERVICE):
            await conn.execute(text(statement))
    yield OutboxDatabase(url=url, engine=engine, sessionmaker=create_sessionmaker(engine))
    await engine.dispose()


@pytest_asyncio.fixture
def settings(broker: BrokerHandle, outbox_db: OutboxDatabase) -> SharedSettings:
    return SharedSettings(
        service_name=SERVICE,
        environment="test",
        database_url=outbox_db.url,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_broker_profile=broker.profile,
        kafka_request_timeout_ms=3_000,
    )


@pytest_asyncio.fixture
def producer_factory(settings: SharedSettings) -> Callable[[], AIOKafkaProducer]:
    return lambda: create_producer(settings, role="test")


def unique_topic() -> str:
    return f"test.{uuid.uuid4().hex[:10]}.v1"


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, distinct: bool = False, timeout_ms: int = 60_000
) -> list[tuple[str, dict[str, str], bytes]]:
    """Read ``topic`` from the start (no group, every partition) until ``expected`` records
    have arrived, or with ``distinct`` that many different CloudEvent ids."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[str, dict[str, str], bytes]] = []

    def arrived() -> int:
        return len({headers.get("ce_id") for _, headers, _ in out}) if distinct else len(out)

    deadline = time.monotonic() + timeout_ms / 1000
    try:
        while arrived() < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {k: v.decode() for k, v in record.headers}
                    out.append((record.key.decode(), headers, record.value))
    finally:
        await consumer.stop()
    return out
