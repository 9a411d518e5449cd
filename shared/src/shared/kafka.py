"""Kafka clients configured one way for every service.

On Apache Kafka the producer is idempotent with ``acks=all`` (no duplicates or reordering on
retry); the in-memory Tansu broker has no idempotent producer, so there the outbox relay and
the consumers' inbox carry exactly-once effects on their own.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from shared.settings import SharedSettings

__all__ = ["broker_reachable", "create_producer", "dlq_topic"]


def create_producer(settings: SharedSettings, *, role: str) -> AIOKafkaProducer:
    on_kafka = settings.kafka_broker_profile == "kafka"
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.kafka_client_prefix}-{role}",
        acks="all",
        enable_idempotence=on_kafka,
        linger_ms=5,
        max_batch_size=256 * 1024,
        compression_type="gzip" if on_kafka else None,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        retry_backoff_ms=200,
    )


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


async def broker_reachable(settings: SharedSettings) -> None:
    """Raise unless the broker answers a metadata request."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=f"{settings.kafka_client_prefix}-readiness",
        request_timeout_ms=2_000,
    )
    try:
        await admin.start()
        await admin.list_topics()
    finally:
        await admin.close()
