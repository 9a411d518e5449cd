from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

import referrals
from referrals.app import create_app
from referrals.settings import ReferralsSettings
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
async def referrals_settings(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> ReferralsSettings:
    url = await database_server.migrated_database("referrals", service_root(referrals.__file__))
    return ReferralsSettings(
        **service_settings_kwargs(
            database_url=url,
            broker=broker,
            public_key=jwt_keys[1],
            group_prefix=f"t{uuid.uuid4().hex[:6]}-",
        )
    )


@pytest_asyncio.fixture(scope="session")
async def referrals_service(referrals_settings: ReferralsSettings) -> AsyncIterator[RunningService]:
    async with running_service(create_app(referrals_settings)) as service:
        yield service


@pytest_asyncio.fixture(scope="session")
async def referrals_api(referrals_settings: ReferralsSettings) -> AsyncIterator[ServedApi]:
    """``python -m referrals api`` on the tests' database, over TCP (see ``served_api``)."""
    async with served_api("referrals", referrals_settings) as api:
        yield api
