"""Rebuild the registry read model from the registry's topics: ``python -m programs rebuild-facts``.

For when ``person_fact``/``household_fact`` cannot be trusted any more: a handler bug fixed, a
column added that old facts lack (``household_id``...), a database restored from an old backup.
It empties both tables and the consumer's inbox rows of the registry's event types, then reads
``registry.person.v1`` and ``registry.household.v1`` from their earliest offsets, through the
same :data:`~programs.consumers.REGISTRY_HANDLERS` and the same
:meth:`shared.consumer.ConsumerRunner.process` the live consumer uses (envelope, validation,
inbox, retries, dead-letter topic), up to the end offsets the topics had once the tables were
empty, and stops there. It can only restore what the topics still hold: give them a retention
(or compaction) that keeps every person's and household's latest event.

**Why a fresh consumer group.** The live group's committed offsets are where the running
consumers stand; moving them back would need the group stopped (Kafka refuses to reset an
active group's offsets) and would make the live consumers replay too, and joining the live group
would share the partitions with them. A group of its own (``<prefix>programs-rebuild-<time>``,
partitions assigned, not subscribed, so no rebalance can interrupt the replay) starts from the
earliest offset without touching theirs; it commits its progress, so Kafka's tools show how far
it got, and the broker forgets it after its offsets retention.

**Why it is safe while the service runs.** Every fact is written by one upsert that never goes
back to an older registry version (or, without versions, an older time), so the replay and the
live consumer can apply the same events in any interleaving and end with the newest fact. The
inbox rows it deletes are those of the live consumer (same consumer name): they say "this
event's effect is in the tables", which stops being true when the tables are emptied, and the
replay writes them again as it re-applies each event, so a redelivery to the live consumer
afterwards is still a duplicate. The tables and the inbox rows are emptied in one transaction
(``TRUNCATE`` waits for the consumer's transaction in flight), and the end offsets are read
after it: an event the live consumer applied before it is replayed, one after it is either in
the replay's range (then the replay finds it in the inbox, a duplicate) or beyond it (the live
consumer's alone). With the consumers stopped it is safe too: they resume from their own
offsets afterwards and find what the replay applied in the inbox. What is *not* true while it
runs: the model is incomplete until the replay has caught up, so enrolment meanwhile answers
``person-not-known`` for people not replayed yet. Run it when that is acceptable (the log says
how far it is), not in the middle of an enrolment drive.

A poison event the live consumer parked is parked again (a second copy on ``<topic>.dlq`` with
the same ``dlq_consumer``).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from programs.consumers import CONSUMER, REGISTRY_HANDLERS, REGISTRY_TOPICS
from programs.models import HouseholdFact, PersonFact
from programs.settings import ProgramsSettings
from shared.consumer import INBOX_TABLE, ConsumerRunner
from shared.db import create_engine, create_sessionmaker, session_scope
from shared.kafka import create_producer

__all__ = ["RebuildReport", "empty_read_model", "rebuild_facts"]

log = logging.getLogger("programs.facts.rebuild")


@dataclass
class RebuildReport:
    group: str
    # "topic/partition" -> the end offset the replay read up to (what the topic held at start)
    end_offsets: dict[str, int] = field(default_factory=dict)
    records: int = 0
    # ConsumerRunner.process outcomes: handled_or_duplicate, ignored, dead_lettered
    outcomes: Counter[str] = field(default_factory=Counter)


async def empty_read_model(session: AsyncSession, *, consumer: str) -> None:
    """Empty ``person_fact`` and ``household_fact`` and forget which registry events
    ``consumer`` applied to them (its inbox rows of the registry's types)."""
    tables = f"{PersonFact.__tablename__}, {HouseholdFact.__tablename__}"
    await session.execute(text(f"TRUNCATE {tables}"))
    await session.execute(
        text(f"DELETE FROM {INBOX_TABLE} WHERE consumer = :consumer AND event_type = ANY(:types)"),
        {"consumer": consumer, "types": sorted(REGISTRY_HANDLERS)},
    )


class _DeadLetterProducer:
    """The runner's DLQ producer, made only if the replay meets poison, stopped at the end."""

    def __init__(self, settings: ProgramsSettings) -> None:
        self._settings = settings
        self.made: list[AIOKafkaProducer] = []

    def __call__(self) -> AIOKafkaProducer:
        self.made.append(create_producer(self._settings, role="rebuild-dlq"))
        return self.made[-1]

    async def stop(self) -> None:
        for producer in self.made:
            try:
                await producer.stop()
            except Exception as exc:  # one the runner gave up on already
                log.debug("programs.rebuild.dlq_stop", extra={"error": repr(exc)})


async def rebuild_facts(
    settings: ProgramsSettings,
    *,
    topics: Iterable[str] = REGISTRY_TOPICS,
    idle_timeout: float = 120.0,
    progress_every: int = 10_000,
) -> RebuildReport:
    """Empty the registry read model and replay ``topics`` into it (see the module); raise
    ``TimeoutError`` when no record has arrived for ``idle_timeout`` seconds while some are
    still due (the broker is away: run it again)."""
    consumer_name = settings.kafka_group_prefix + CONSUMER
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    report = RebuildReport(group=f"{settings.kafka_group_prefix}{CONSUMER}-rebuild-{stamp}")
    engine = create_engine(
        settings.database_url, pool_size=2, application_name="simpul-programs-rebuild"
    )
    dead_letters = _DeadLetterProducer(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=report.group,
        client_id=f"{settings.kafka_client_prefix}-rebuild",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        sessionmaker = create_sessionmaker(engine)
        runner = ConsumerRunner(
            name=consumer_name,  # the live consumer's inbox: see the module
            topics=list(topics),
            handlers=REGISTRY_HANDLERS,
            sessionmaker=sessionmaker,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            producer_factory=dead_letters,
            max_attempts=settings.consumer_max_attempts,
            backoff_seconds=settings.consumer_retry_backoff_seconds,
        )
        await consumer.start()
        partitions = await _partitions(settings, runner.topics)
        async with session_scope(sessionmaker) as session:
            await empty_read_model(session, consumer=consumer_name)
        log.info("programs.rebuild.emptied", extra={"group": report.group})
        if partitions:
            await _replay(consumer, runner, partitions, report, idle_timeout, progress_every)
    finally:
        await consumer.stop()
        await dead_letters.stop()
        await engine.dispose()
    log.info(
        "programs.rebuild.done",
        extra={"group": report.group, "records": report.records, **report.outcomes},
    )
    return report


async def _partitions(settings: ProgramsSettings, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those ``topics`` that exist (a topic nobody wrote to yet has none).

    Asked of the admin client: a consumer that is assigned rather than subscribed has no
    metadata of the topics yet (``partitions_for_topic`` answers None on Apache Kafka, whose
    first metadata answer names no topic), and only existing topics are described, so asking
    never creates one."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.kafka_client_prefix}-rebuild-admin",
    )
    await admin.start()
    try:
        wanted = [topic for topic in topics if topic in set(await admin.list_topics())]
        described = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    return sorted(
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    )


async def _replay(
    consumer: AIOKafkaConsumer,
    runner: ConsumerRunner,
    partitions: list[TopicPartition],
    report: RebuildReport,
    idle_timeout: float,
    progress_every: int,
) -> None:
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
    report.end_offsets = {f"{tp.topic}/{tp.partition}": ends[tp] for tp in partitions}
    due = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
    log.info("programs.rebuild.replaying", extra={"end_offsets": report.end_offsets})
    last_record = time.monotonic()
    while due:
        batches = await consumer.getmany(*due, timeout_ms=500, max_records=200)
        for partition, records in batches.items():
            replayed = [r for r in records if r.offset < ends[partition]]
            for record in replayed:
                report.outcomes[await runner.process(record)] += 1
                report.records += 1
                if report.records % progress_every == 0:
                    log.info("programs.rebuild.progress", extra={"records": report.records})
            if replayed:
                last_record = time.monotonic()
                await _commit_progress(consumer, partition, replayed[-1].offset + 1)
        # By position, not by the last record: a control record can end a partition.
        due = {tp for tp in due if await consumer.position(tp) < ends[tp]}
        if due and time.monotonic() - last_record > idle_timeout:
            raise TimeoutError(
                f"no record for {idle_timeout:.0f} s with {sorted(map(str, due))} still due"
            )


async def _commit_progress(
    consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int
) -> None:
    """Show how far the replay got to Kafka's tools; nothing depends on it."""
    try:
        await consumer.commit({partition: offset})
    except KafkaError as exc:
        log.warning("programs.rebuild.commit_failed", extra={"error": repr(exc)})
