"""Test harness shared by every service's tests and the cross-service tests.

The pytest plugin (:mod:`shared.testing.plugin`, loaded from the root ``pyproject.toml``) starts
a real PostgreSQL and a real Kafka-protocol broker for the session unless ``DATABASE_URL`` /
``KAFKA_BOOTSTRAP_SERVERS`` point at existing ones, and ``SIMPUL_TEST_BROKER=kafka`` runs the
suite on Apache Kafka (``scripts/kafka/apache-kafka.sh``).
"""

from shared.testing.harness import (
    BrokerHandle,
    DatabaseServer,
    RunningService,
    ServedApi,
    commit_fault,
    eventually,
    fetch,
    reads_missing_their_write,
    retries_not_replayed,
    running_service,
    served_api,
    without_instance,
)

__all__ = [
    "BrokerHandle",
    "DatabaseServer",
    "RunningService",
    "ServedApi",
    "commit_fault",
    "eventually",
    "fetch",
    "reads_missing_their_write",
    "retries_not_replayed",
    "running_service",
    "served_api",
    "without_instance",
]
