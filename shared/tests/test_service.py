"""The request's unit of work at the edge: it ends before the answer, and its failures are 4xx/5xx
problems that say what happened. (That a client never sees a 2xx before the commit is shown over
TCP by each service's ``test_served.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import text

from shared.db import session_scope
from shared.embedded import free_port
from shared.jobs import JobKind, schedule
from shared.service import (
    ReadinessDetails,
    ServiceRuntime,
    SessionDep,
    create_service_app,
    typed_settings,
)
from shared.settings import SharedSettings
from shared.state import app_state
from shared.testing import DatabaseServer, eventually, running_service

from .conftest import OutboxDatabase
from .test_jobs import record_effect

PROBLEM_JSON = "application/problem+json"


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/collide", status_code=201)
    async def collide(session: SessionDep) -> dict[str, str]:
        await session.execute(
            text(
                "DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' "
                "USING ERRCODE = 'serialization_failure'; END $$"
            )
        )
        return {}

    @router.post("/write", status_code=201)
    async def write(session: SessionDep) -> dict[str, str]:
        await session.execute(text("SELECT 1"))
        return {}

    return router


async def late_session() -> AsyncIterator[None]:
    """A session dependency of the default (request) scope: it would end after the answer."""
    yield None


def _settings(database_url: str) -> SharedSettings:
    return SharedSettings(service_name="edge", environment="test", database_url=database_url)


def _app(database_url: str, router: APIRouter | None = None) -> FastAPI:
    return create_service_app(
        _settings(database_url),
        title="edge",
        description="a service of one route",
        version="0",
        routers=[router or _router()],
        run_relay=False,
        run_consumers=False,
    )


class TestRequestUnitOfWork:
    async def test_a_serialization_failure_is_a_409_to_retry(
        self, database_server: DatabaseServer
    ) -> None:
        url = database_server.url(await database_server.create_database("edge"))
        app = _app(url)
        async with running_service(app) as service:
            response = await service.client.post("/collide")
        assert response.status_code == 409
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "1"
        assert response.json()["type"].endswith("/transaction-conflict")

    async def test_an_unreachable_database_is_a_503_with_retry_after(self) -> None:
        dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
        app = _app(dead)
        async with running_service(app) as service:
            response = await service.client.post("/write")
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "5"
        assert response.json()["type"].endswith("/database-unavailable")

    def test_a_route_whose_session_would_commit_after_the_answer_is_refused(self) -> None:
        router = APIRouter()

        @router.post("/late")
        async def late(session: Annotated[None, Depends(late_session)]) -> None:
            return None

        with pytest.raises(RuntimeError, match=r"POST /late: .*late_session"):
            _app("postgresql+asyncpg://x@127.0.0.1:1/x", router)


class TestJobsRunWhereTheRelayRuns:
    async def test_the_worker_runs_due_jobs_and_an_api_process_does_not(
        self, outbox_db: OutboxDatabase, settings: SharedSettings
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await schedule(session, kind="effect", key="k1")
        fast = settings.model_copy(update={"job_poll_interval_seconds": 0.05})
        kinds = {"effect": JobKind(record_effect)}

        api_only = create_service_app(
            fast,
            title="edge",
            description="api",
            version="0",
            routers=[],
            jobs=kinds,
            run_relay=False,
            run_consumers=False,
        )
        async with running_service(api_only) as api:
            assert api.runtime.job_runner is None
        worker = create_service_app(
            fast,
            title="edge",
            description="worker",
            version="0",
            routers=[],
            jobs=kinds,
            run_consumers=False,
        )
        async with running_service(worker):
            await eventually(lambda: outbox_db.fetch("SELECT 1 FROM effect"), what="the job")
        assert (await outbox_db.fetch("SELECT status FROM job"))[0]["status"] == "done"


class _OtherSettings(SharedSettings):
    pass


def test_typed_settings_are_the_app_s_own_or_a_clear_error() -> None:
    app = _app("postgresql+asyncpg://x@127.0.0.1:1/x")
    request = Request({"type": "http", "app": app})
    assert typed_settings(SharedSettings)(request) is app.state.settings
    with pytest.raises(LookupError, match="holds SharedSettings; expected _OtherSettings"):
        typed_settings(_OtherSettings)(request)


def test_app_state_names_what_is_missing() -> None:
    app = FastAPI()
    with pytest.raises(LookupError, match=r"app.state.runtime holds nothing; expected int"):
        app_state(app, "runtime", int)
    app.state.runtime = "a string"
    with pytest.raises(LookupError, match=r"holds str; expected int"):
        app_state(app, "runtime", int)
    app.state.runtime = 7
    assert app_state(Request({"type": "http", "app": app}), "runtime", int) == 7


class TestReadinessDetails:
    """A service's details sit beside the checks and never make it unready."""

    @staticmethod
    def _app(settings: SharedSettings, details: ReadinessDetails) -> FastAPI:
        return create_service_app(
            settings,
            title="edge",
            description="details",
            version="0",
            routers=[],
            run_relay=False,
            run_consumers=False,
            readiness_details=details,
        )

    async def test_details_are_reported_beside_the_checks(self, settings: SharedSettings) -> None:
        async def details(runtime: ServiceRuntime) -> dict[str, object]:
            return {"read_model": {"lag_seconds": 1.5}, "service": runtime.settings.service_name}

        async with running_service(self._app(settings, details)) as service:
            response = await service.client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": "ok",
            "checks": {"database": "ok", "broker": "ok"},
            "details": {"read_model": {"lag_seconds": 1.5}, "service": settings.service_name},
        }

    async def test_details_that_fail_are_reported_and_the_service_stays_ready(
        self, settings: SharedSettings
    ) -> None:
        async def broken(runtime: ServiceRuntime) -> dict[str, object]:
            raise RuntimeError("the read model's figures are away")

        async with running_service(self._app(settings, broken)) as service:
            response = await service.client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["details"] == {"unavailable": "RuntimeError"}

    async def test_an_unready_service_still_reports_its_details(
        self, settings: SharedSettings
    ) -> None:
        async def details(runtime: ServiceRuntime) -> dict[str, object]:
            return {"read_model": "behind"}

        dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/gone"
        app = self._app(settings.model_copy(update={"database_url": dead}), details)
        async with running_service(app) as service:
            response = await service.client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"].startswith("down")
        assert response.json()["details"] == {"read_model": "behind"}
