"""A service's test fixtures, written once for the four services and the cross-service tests.

Shared imports no service (import-linter's "shared imports no service"), so a service comes in
as its package name, for its migrations, and as the classes its conftest passes.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Callable
from importlib import import_module
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from shared.settings import SharedSettings
from shared.testing.harness import (
    BrokerHandle,
    DatabaseServer,
    RunningService,
    ServedApi,
    running_service,
    served_api,
)
from shared.testing.use_cases import rolled_back_session

__all__ = [
    "ServiceFixtures",
    "service_fixtures",
    "service_root",
    "service_settings_kwargs",
    "service_test_settings",
]

S = TypeVar("S", bound=SharedSettings)
F = TypeVar("F", bound=Callable[..., Any])


def service_settings_kwargs(
    *, database_url: str, broker: BrokerHandle, public_key: str, group_prefix: str
) -> dict[str, Any]:
    """Settings every test app gets: its database, the session broker, fast relay polling."""
    return {
        "environment": "test",
        "database_url": database_url,
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "kafka_broker_profile": broker.profile,
        "kafka_group_prefix": group_prefix,
        "jwt_public_key": public_key,
        "relay_poll_interval_seconds": 0.2,
        "job_poll_interval_seconds": 0.1,
        "kafka_request_timeout_ms": 3_000,
        "consumer_retry_backoff_seconds": 0.05,
        "consumer_max_attempts": 3,
    }


def service_root(package_file: str) -> Path:
    """``services/<name>`` from a file inside ``services/<name>/src/<name>/``."""
    return Path(package_file).resolve().parents[2]


async def service_test_settings(
    database_server: DatabaseServer,
    broker: BrokerHandle,
    jwt_keys: tuple[str, str],
    *,
    service: str,
    settings_class: type[S],
    database: str | None = None,
    group_prefix: str,
    **overrides: Any,
) -> S:
    """``settings_class`` for a test app of ``service`` (its package name): a fresh database
    named after ``database`` (default: the service) migrated with the service's own Alembic
    history, the session broker and token key, and :func:`service_settings_kwargs`;
    ``overrides`` replace or add settings."""
    # The settings classes ignore unknown names (extra="ignore"), so a misspelt or removed
    # setting would silently change nothing.
    unknown = sorted(overrides.keys() - settings_class.model_fields.keys())
    if unknown:
        raise TypeError(f"{settings_class.__name__} has no setting {', '.join(unknown)}")
    package_file = import_module(service).__file__
    if package_file is None:
        raise ValueError(f"{service} is a namespace package: no service root to migrate from")
    url = await database_server.migrated_database(database or service, service_root(package_file))
    kwargs = service_settings_kwargs(
        database_url=url, broker=broker, public_key=jwt_keys[1], group_prefix=group_prefix
    )
    return settings_class(**{**kwargs, **overrides})


class ServiceFixtures(NamedTuple):
    """The fixtures of one service, to assign to the names they are registered under."""

    settings: Any
    service: Any
    api: Any
    session: Any


def service_fixtures(
    service: str,
    settings_class: type[S],
    create_app: Callable[[S], FastAPI],
    **overrides: Any,
) -> ServiceFixtures:
    """A service's four fixtures, for its conftest to unpack into module names::

        registry_settings, registry_service, registry_api, registry_session = service_fixtures(
            "registry", RegistrySettings, create_app
        )

    * ``<service>_settings`` (session): :func:`service_test_settings` with ``overrides``, on a
      consumer-group prefix of its own;
    * ``<service>_service`` (session): ``create_app(settings)`` running in-process
      (:func:`~shared.testing.running_service`);
    * ``<service>_api`` (session): ``python -m <service> api`` on the same database, over TCP
      (:func:`~shared.testing.served_api`);
    * ``<service>_session`` (per test): a session on the same database whose writes are rolled
      back after the test (:func:`~shared.testing.rolled_back_session`).
    """
    settings_name = f"{service}_settings"

    @pytest_asyncio.fixture(scope="session", name=settings_name)
    async def settings(
        database_server: DatabaseServer, broker: BrokerHandle, jwt_keys: tuple[str, str]
    ) -> S:
        return await service_test_settings(
            database_server,
            broker,
            jwt_keys,
            service=service,
            settings_class=settings_class,
            group_prefix=f"t{uuid.uuid4().hex[:6]}-",
            **overrides,
        )

    async def running(**requested: S) -> AsyncIterator[RunningService]:
        """The app's lifespan (relay, consumers) running, reached over ASGI."""
        async with running_service(create_app(requested[settings_name])) as app:
            yield app

    async def api(**requested: S) -> AsyncIterator[ServedApi]:
        """The service's API process on the tests' database, over TCP (see ``served_api``)."""
        async with served_api(service, requested[settings_name]) as served:
            yield served

    async def session(**requested: S) -> AsyncIterator[AsyncSession]:
        """A session on the tests' database, rolled back after the test."""
        async with rolled_back_session(requested[settings_name].database_url) as rolled_back:
            yield rolled_back

    return ServiceFixtures(
        settings=settings,
        service=pytest_asyncio.fixture(
            _requesting(settings_name, running), scope="session", name=f"{service}_service"
        ),
        api=pytest_asyncio.fixture(
            _requesting(settings_name, api), scope="session", name=f"{service}_api"
        ),
        session=pytest_asyncio.fixture(
            _requesting(settings_name, session), name=f"{service}_session"
        ),
    )


def _requesting(fixture_name: str, function: F) -> F:
    """``function`` as pytest sees it when it asks for the fixture ``fixture_name``.

    pytest requests fixtures by the names of a function's parameters, and this name is known
    only when the service is; the signature pytest reads (``inspect.signature``) can say it.
    """
    parameter = inspect.Parameter(fixture_name, inspect.Parameter.KEYWORD_ONLY)
    function.__signature__ = inspect.Signature([parameter])  # type: ignore[attr-defined]
    return function
