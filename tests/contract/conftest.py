"""Each service's API served over TCP by its own ``python -m <service> api`` process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from importlib import import_module
from typing import Any

import pytest_asyncio

from shared.settings import SharedSettings
from shared.testing import (
    BrokerHandle,
    DatabaseServer,
    ServedApi,
    served_api,
    service_test_settings,
)

# service -> its settings class, by module path (the services never import each other).
SETTINGS_CLASSES = {
    "registry": "registry.settings:RegistrySettings",
    "programs": "programs.settings:ProgramsSettings",
    "referrals": "referrals.settings:ReferralsSettings",
    "complaints": "complaints.settings:ComplaintsSettings",
}


def settings_class(service: str) -> type[SharedSettings]:
    module, name = SETTINGS_CLASSES[service].split(":")
    cls: type[SharedSettings] = getattr(import_module(module), name)
    return cls


@pytest_asyncio.fixture(scope="session")
async def served_apis(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> AsyncIterator[dict[str, ServedApi]]:
    """The four APIs, each on a freshly migrated database of its own."""
    prefix = f"contract{uuid.uuid4().hex[:6]}-"
    settings: dict[str, Any] = {}
    for service in SETTINGS_CLASSES:
        settings[service] = await service_test_settings(
            database_server,
            broker,
            jwt_keys,
            service=service,
            settings_class=settings_class(service),
            database=f"contract_{service}",
            group_prefix=prefix,
        )
    async with AsyncExitStack() as stack:
        yield {
            service: await stack.enter_async_context(served_api(service, settings[service]))
            for service in SETTINGS_CLASSES
        }
