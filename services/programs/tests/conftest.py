from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

import programs
from programs.app import create_app
from programs.settings import ProgramsSettings
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
async def programs_settings(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> ProgramsSettings:
    url = await database_server.migrated_database("programs", service_root(programs.__file__))
    return ProgramsSettings(
        **service_settings_kwargs(
            database_url=url,
            broker=broker,
            public_key=jwt_keys[1],
            group_prefix=f"t{uuid.uuid4().hex[:6]}-",
        )
    )


@pytest_asyncio.fixture(scope="session")
async def programs_service(programs_settings: ProgramsSettings) -> AsyncIterator[RunningService]:
    async with running_service(create_app(programs_settings)) as service:
        yield service


@pytest_asyncio.fixture(scope="session")
async def programs_api(programs_settings: ProgramsSettings) -> AsyncIterator[ServedApi]:
    """``python -m programs api`` on the tests' database, over TCP (see ``served_api``)."""
    async with served_api("programs", programs_settings) as api:
        yield api
