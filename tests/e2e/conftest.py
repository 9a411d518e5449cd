"""All four services, each with its own migrated database, on the session broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from complaints.app import create_app as create_complaints
from complaints.settings import ComplaintsSettings
from programs.app import create_app as create_programs
from programs.settings import ProgramsSettings
from referrals.app import create_app as create_referrals
from referrals.settings import ReferralsSettings
from registry.app import create_app as create_registry
from registry.settings import RegistrySettings
from shared.testing import (
    BrokerHandle,
    DatabaseServer,
    RunningService,
    running_service,
    service_test_settings,
)


@dataclass
class Simpul:
    registry: RunningService
    programs: RunningService
    referrals: RunningService
    complaints: RunningService
    settings: dict[str, Any]


@pytest_asyncio.fixture(scope="session")
async def simpul(
    database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
) -> AsyncIterator[Simpul]:
    prefix = f"e2e{uuid.uuid4().hex[:6]}-"
    built: dict[str, Any] = {}
    for service, settings_class in (
        ("registry", RegistrySettings),
        ("programs", ProgramsSettings),
        ("referrals", ReferralsSettings),
        ("complaints", ComplaintsSettings),
    ):
        built[service] = await service_test_settings(
            database_server,
            broker,
            jwt_keys,
            service=service,
            settings_class=settings_class,
            database=f"e2e_{service}",
            group_prefix=prefix,
        )
    async with (
        running_service(create_registry(built["registry"])) as registry_service,
        running_service(create_programs(built["programs"])) as programs_service,
        running_service(create_referrals(built["referrals"])) as referrals_service,
        running_service(create_complaints(built["complaints"])) as complaints_service,
    ):
        yield Simpul(
            registry=registry_service,
            programs=programs_service,
            referrals=referrals_service,
            complaints=complaints_service,
            settings=built,
        )
