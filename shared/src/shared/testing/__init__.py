"""Test harness shared by every service's tests and the cross-service tests.

The pytest plugin (:mod:`shared.testing.plugin`, loaded from the root ``pyproject.toml``) starts
a real PostgreSQL and a real Kafka-protocol broker for the session unless ``DATABASE_URL`` /
``KAFKA_BOOTSTRAP_SERVERS`` point at existing ones, and ``SIMPUL_TEST_BROKER=kafka`` runs the
suite on Apache Kafka (``scripts/kafka/apache-kafka.sh``).

Each service's conftest gets its fixtures from :func:`service_fixtures`; consumer tests publish
with :func:`publish_events`; use cases are called directly on :func:`rolled_back_session`.
"""

from shared.testing.fixtures import ServiceFixtures, service_fixtures, service_test_settings
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
from shared.testing.publishing import publish_events, publish_records
from shared.testing.use_cases import (
    make_caller,
    rolled_back_session,
    sequence_number,
    stable_number,
    stable_uuid,
    staged_event_types,
)

__all__ = [
    "BrokerHandle",
    "DatabaseServer",
    "RunningService",
    "ServedApi",
    "ServiceFixtures",
    "commit_fault",
    "eventually",
    "fetch",
    "make_caller",
    "publish_events",
    "publish_records",
    "reads_missing_their_write",
    "retries_not_replayed",
    "rolled_back_session",
    "running_service",
    "served_api",
    "service_fixtures",
    "service_test_settings",
    "sequence_number",
    "stable_number",
    "stable_uuid",
    "staged_event_types",
    "without_instance",
]
