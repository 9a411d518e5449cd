from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

import registry
from registry.app import create_app
from registry.settings import RegistrySettings
from shared.testing import (
    BrokerHandle,
    DatabaseServer,
    RunningService,
    ServedApi,
    running_service,
    served_api,
)
from shared.testing.plugin import service_root, service_settings_kwargs


@pytest_asyncio.fixture(scope="session")
async def registry_settings(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> RegistrySettings:
    url = await database_server.migrated_database("registry", service_root(registry.__file__))
    return RegistrySettings(
        **service_settings_kwargs(
            database_url=url,
            broker=broker,
            public_key=jwt_keys[1],
            group_prefix=f"t{uuid.uuid4().hex[:6]}-",
        ),
        # SPDCI callbacks: look for work often and retry soon, so the tests wait little.
        dci_worker_poll_seconds=0.1,
        dci_callback_backoff_seconds=0.3,
        dci_callback_max_attempts=4,
        dci_callback_timeout_seconds=5.0,
    )


@pytest_asyncio.fixture(scope="session")
async def registry_service(registry_settings: RegistrySettings) -> AsyncIterator[RunningService]:
    async with running_service(create_app(registry_settings)) as service:
        yield service


@pytest_asyncio.fixture(scope="session")
async def registry_api(registry_settings: RegistrySettings) -> AsyncIterator[ServedApi]:
    """``python -m registry api`` on the tests' database, over TCP (see ``served_api``)."""
    async with served_api("registry", registry_settings) as api:
        yield api
