"""pytest plugin: session-wide PostgreSQL, broker, token keys (each service's own fixtures:
:func:`shared.testing.service_fixtures`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shared.auth import DEVELOPMENT_SCOPES, generate_keypair, mint_token

# Re-exported: tests and benchmarks import these two from the plugin.
from shared.testing.fixtures import service_root as service_root
from shared.testing.fixtures import service_settings_kwargs as service_settings_kwargs
from shared.testing.harness import BrokerHandle, DatabaseServer

ALL_SCOPES = DEVELOPMENT_SCOPES


def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis (and schemathesis, built on it) keeps no example database in the checkout:
    what a run tries depends on the code and the seed, not on earlier runs on this machine."""
    from hypothesis import settings

    settings.register_profile("simpul", database=None)
    settings.load_profile("simpul")


def pytest_report_header(config: pytest.Config) -> list[str]:
    import os

    broker = (
        "external " + os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        if os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        else os.environ.get("SIMPUL_TEST_BROKER", "tansu")
    )
    database = "external DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded PostgreSQL"
    return [f"simpul: broker={broker}, database={database}"]


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    server = DatabaseServer.start(tmp_path_factory.mktemp("postgres"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    handle = BrokerHandle.start(tmp_path_factory.mktemp("broker"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def jwt_keys() -> tuple[str, str]:
    """(private PEM, public PEM) of the session's token issuer."""
    return generate_keypair()


@pytest.fixture(scope="session")
def mint(jwt_keys: tuple[str, str]) -> Callable[..., str]:
    """``mint(agency=..., scopes=[...], regions=[...])`` -> a signed bearer token."""

    def _mint(
        *,
        agency: str = "KEMENSOS",
        scopes: Any = ALL_SCOPES,
        regions: Any = (),
        subject: str = "tester",
        **kwargs: Any,
    ) -> str:
        return mint_token(
            jwt_keys[0], subject=subject, agency=agency, scopes=scopes, regions=regions, **kwargs
        )

    return _mint


@pytest.fixture(scope="session")
def auth_header(mint: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def _header(**kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(**kwargs)}"}

    return _header
