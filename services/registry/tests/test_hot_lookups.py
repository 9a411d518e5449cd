"""The by-NIK hot path (registry.lookup.hot_path) answers exactly as the FastAPI route does.

A request with an extra, ignored query parameter is not "well-formed" for the hot path, so it
reaches the FastAPI route: comparing the two answers compares the two paths.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import text

from registry.app import ROUTERS, create_app
from registry.dependencies import AuditedReadSession
from registry.lookup.hot_path import HotLookups
from registry.projection import IDENTITY, READ, SOCIOECONOMIC
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch, running_service

from .factories import OTHER_REGENCY_VILLAGE
from .test_lookups import PURPOSE, audit_rows, insert_household, register, unknown_nik

Headers = Callable[..., dict[str, str]]
ROUTE_ONLY = {**PURPOSE, "via": "route"}


async def both_paths(
    service: RunningService, nik: str, headers: dict[str, str]
) -> tuple[tuple[int, object], tuple[int, object]]:
    hot = await service.client.get(f"/v1/persons/by-nik/{nik}", params=PURPOSE, headers=headers)
    route = await service.client.get(
        f"/v1/persons/by-nik/{nik}", params=ROUTE_ONLY, headers=headers
    )
    return (hot.status_code, hot.json()), (route.status_code, route.json())


@pytest.mark.parametrize(
    ("scopes", "regions"),
    [
        ([READ], None),
        ([READ, IDENTITY, SOCIOECONOMIC], None),
        ([READ, IDENTITY], ["1771"]),
        ([READ, IDENTITY], ["1701"]),  # the person lies outside: 404 on both paths
    ],
)
async def test_hot_path_and_route_give_the_same_answer(
    registry_service: RunningService,
    registry_settings: RegistrySettings,
    auth_header: Headers,
    scopes: list[str],
    regions: list[str] | None,
) -> None:
    household_id, _ = await insert_household(registry_settings, decile=4)
    person = await register(
        registry_service,
        auth_header,
        birth_date=date(1984, 3, 7),
        sex="M",
        household_id=household_id,
        relationship="head",
    )
    headers = auth_header(scopes=scopes, regions=regions or ())
    hot, route = await both_paths(registry_service, person["nik"], headers)
    assert hot == route
    assert hot[0] == (404 if regions == ["1701"] else 200)

    unknown_hot, unknown_route = await both_paths(registry_service, unknown_nik(), headers)
    assert unknown_hot == unknown_route
    assert unknown_hot[0] == 404


async def test_hot_path_audits_and_is_measured_like_the_route(
    registry_service: RunningService,
    registry_settings: RegistrySettings,
    auth_header: Headers,
) -> None:
    person = await register(registry_service, auth_header)
    headers = {**auth_header(scopes=[READ]), "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"}
    response = await registry_service.client.get(
        f"/v1/persons/by-nik/{person['nik']}", params=PURPOSE, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["traceparent"].startswith(f"00-{'ab' * 16}-")

    [audit] = await audit_rows(registry_settings, person["id"])
    assert (audit["purpose"], audit["action"], audit["trace_id"]) == (
        PURPOSE["purpose"],
        "read",
        "ab" * 16,
    )
    # The hot path's own pool answered (not the route's ORM session)...
    hot_connections = await fetch(
        registry_settings,
        "SELECT count(*) AS n FROM pg_stat_activity"
        " WHERE application_name = 'simpul-registry-lookups' AND datname = current_database()",
    )
    assert hot_connections[0]["n"] >= 1
    # ...and it is counted under the route's path template.
    metrics = (await registry_service.client.get("/metrics")).text
    assert (
        'simpul_http_requests_total{method="GET",route="/v1/persons/by-nik/{nik}",'
        'service="registry",status="200"}'
    ) in metrics


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ("no token", 401),
        ("bad token", 401),
        ("no read scope", 403),
        ("malformed nik", 422),
        ("short purpose", 422),
        ("no purpose", 422),
    ],
)
async def test_requests_the_hot_path_declines_get_the_routes_errors(
    registry_service: RunningService, auth_header: Headers, change: str, status: int
) -> None:
    person = await register(registry_service, auth_header, village_code=OTHER_REGENCY_VILLAGE)
    nik, params, headers = person["nik"], dict(PURPOSE), auth_header(scopes=[READ])
    if change == "no token":
        headers = {}
    elif change == "bad token":
        headers = {"Authorization": "Bearer not-a-token"}
    elif change == "no read scope":
        headers = auth_header(scopes=["programs:enrol"])
    elif change == "malformed nik":
        nik = nik[:-1] + "x"
    elif change == "short purpose":
        params = {"purpose": "x"}
    else:
        params = {}
    response = await registry_service.client.get(
        f"/v1/persons/by-nik/{nik}", params=params, headers=headers
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


def _hot_lookups(app: Any) -> HotLookups:
    layer = app.middleware_stack
    while not isinstance(layer, HotLookups):
        layer = layer.app
    return layer


def _audited_read_dependency() -> Any:
    """The function behind ``AuditedReadSession``, as FastAPI calls it."""
    return AuditedReadSession.__metadata__[0].dependency


@contextlib.asynccontextmanager
async def new_connections_wait_for_flush(settings: RegistrySettings) -> AsyncIterator[None]:
    """Test servers run with ``synchronous_commit = off``; connections opened inside this block
    start from ``on``, as in production, so that turning it off shows."""
    alter = "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I {}', current_database()); END $$"
    await fetch(settings, alter.format("SET synchronous_commit = on"))
    try:
        yield
    finally:
        await fetch(settings, alter.format("RESET synchronous_commit"))


@pytest.mark.parametrize(("commit", "flush_wait"), [("durable", "on"), ("async", "off")])
async def test_read_audit_commit_decides_whether_lookups_wait_for_the_disk(
    registry_settings: RegistrySettings, auth_header: Headers, commit: str, flush_wait: str
) -> None:
    settings = registry_settings.model_copy(update={"read_audit_commit": commit})
    app = create_app(settings, run_relay=False, run_consumers=False)
    async with new_connections_wait_for_flush(settings), running_service(app) as service:
        person = await register(service, auth_header)
        for params in (PURPOSE, ROUTE_ONLY):  # the hot path, then the route
            response = await service.client.get(
                f"/v1/persons/by-nik/{person['nik']}",
                params=params,
                headers=auth_header(scopes=[READ]),
            )
            assert response.status_code == 200, response.text
        # Either way every read is audited, in the statement that reads.
        assert len(await audit_rows(settings, person["id"])) == 2

        pool = await _hot_lookups(app)._statement_pool()
        async with pool.acquire() as connection:
            assert await connection.fetchval("SHOW synchronous_commit") == flush_wait
        request = type("Request", (), {"app": app})()
        async with service.runtime.sessionmaker() as session, session.begin():
            await _audited_read_dependency()(request, session)
            shown = await session.scalar(text("SHOW synchronous_commit"))
        assert shown == flush_wait


def test_every_audited_read_route_takes_the_audited_read_session() -> None:
    audited_read = _audited_read_dependency()

    def calls(dependant: Any) -> Iterator[Any]:
        for dependency in dependant.dependencies:
            yield dependency.call
            yield from calls(dependency)

    routes = [
        route
        for resource_router in ROUTERS
        for route in resource_router.routes
        if isinstance(route, APIRoute)
    ]
    reads = [
        route
        for route in routes
        if any(param.name == "purpose" for param in route.dependant.query_params)
        or route.path == "/v1/persons/lookup"
    ]
    assert len(reads) == 7  # by id, by NIK, by KK, batch, search, two histories
    for route in reads:
        assert audited_read in set(calls(route.dependant)), route.path
    # ...and nothing that changes data gives up waiting for the disk.
    for route in routes:
        if route.methods & {"POST", "PATCH", "PUT", "DELETE"} and route not in reads:
            assert audited_read not in set(calls(route.dependant)), route.path
