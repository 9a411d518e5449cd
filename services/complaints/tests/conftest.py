from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

import complaints
from complaints.app import create_app
from complaints.settings import ComplaintsSettings
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
async def complaints_settings(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> ComplaintsSettings:
    url = await database_server.migrated_database("complaints", service_root(complaints.__file__))
    return ComplaintsSettings(
        **service_settings_kwargs(
            database_url=url,
            broker=broker,
            public_key=jwt_keys[1],
            group_prefix=f"t{uuid.uuid4().hex[:6]}-",
        )
    )


@pytest_asyncio.fixture(scope="session")
async def complaints_service(
    complaints_settings: ComplaintsSettings,
) -> AsyncIterator[RunningService]:
    async with running_service(create_app(complaints_settings)) as service:
        yield service


@pytest_asyncio.fixture(scope="session")
async def complaints_api(complaints_settings: ComplaintsSettings) -> AsyncIterator[ServedApi]:
    """``python -m complaints api`` on the tests' database, over TCP (see ``served_api``)."""
    async with served_api("complaints", complaints_settings) as api:
        yield api
