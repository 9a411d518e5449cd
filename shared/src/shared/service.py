"""What every service process is made of, built once here so the four services only fill it in.

:class:`ServiceRuntime` owns the resources of one process (engine, sessionmaker, Kafka producer,
outbox relay, consumer runners) and starts and stops them in the right order.
:func:`create_service_app` builds the FastAPI app around a runtime: problem+json errors, body
limit, trace context, ``/healthz``, ``/readyz``, ``/metrics``, and the service's routers.
``/readyz`` answers 503 when the database or the broker is down (``checks``); a service may add
what an operator should see without it failing readiness (``details``: how far behind a read
model is), through ``readiness_details``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.middleware import Middleware

from shared.auth import TokenVerifier
from shared.consumer import ConsumerRunner, Handler, prune_inbox
from shared.db import create_engine, create_sessionmaker, ping, session_scope
from shared.errors import (
    BodySizeLimitMiddleware,
    ServiceUnavailable,
    install_problem_handlers,
    problem_responses,
)
from shared.idempotency import reap_expired_keys
from shared.jobs import JobKind, JobRunner, prune_jobs
from shared.kafka import broker_reachable, create_producer
from shared.observability import TraceContextMiddleware, metrics_response
from shared.openapi import install_openapi_completion
from shared.outbox import OutboxRelay
from shared.settings import SharedSettings
from shared.state import app_state

__all__ = [
    "BackgroundWorker",
    "ConsumerSpec",
    "ReadinessDetails",
    "ServiceRuntime",
    "SessionDep",
    "create_service_app",
    "get_runtime",
    "get_session",
    "typed_settings",
]

log = logging.getLogger("shared.service")
SettingsT = TypeVar("SettingsT", bound=SharedSettings)


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer group of a service: its topics and its table of handlers."""

    name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler[Any]]


# A service's own loop that runs next to the outbox relay (e.g. outbound webhooks): it gets the
# runtime (sessionmaker, settings) and must return soon after ``runtime.stopping`` is set.
BackgroundWorker = Callable[["ServiceRuntime"], Awaitable[None]]

# What a service reports beside its readiness checks (``details`` of ``/readyz``): never a reason
# to be unready. It gets the runtime (its consumer runners, sessionmaker) and must answer quickly.
ReadinessDetails = Callable[["ServiceRuntime"], Awaitable[Mapping[str, Any]]]


@dataclass
class ServiceRuntime:
    settings: SharedSettings
    consumers: Sequence[ConsumerSpec] = ()
    run_relay: bool = True
    run_consumers: bool = True
    workers: Sequence[tuple[str, BackgroundWorker]] = ()
    jobs: Mapping[str, JobKind] = field(default_factory=dict)
    engine: AsyncEngine = field(init=False)
    sessionmaker: async_sessionmaker[AsyncSession] = field(init=False)
    relay: OutboxRelay | None = field(init=False, default=None)
    job_runner: JobRunner | None = field(init=False, default=None)
    runners: list[ConsumerRunner] = field(init=False, default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)
    _stopping: asyncio.Event = field(init=False, default_factory=asyncio.Event)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ServiceRuntime]:
        settings = self.settings
        self.engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            application_name=f"simpul-{settings.service_name}",
        )
        self.sessionmaker = create_sessionmaker(self.engine)
        try:
            if self.run_relay:
                self._spawn(self._housekeeping(), "housekeeping")
                self.relay = OutboxRelay(
                    service=settings.service_name,
                    database_url=settings.database_url,
                    producer_factory=lambda: create_producer(settings, role="relay"),
                    batch_size=settings.relay_batch_size,
                    poll_interval=settings.relay_poll_interval_seconds,
                    send_timeout=settings.kafka_request_timeout_ms / 1000 + 5,
                )
                self._spawn(self.relay.run(), "relay")
                if self.jobs:
                    self.job_runner = JobRunner(
                        service=settings.service_name,
                        sessionmaker=self.sessionmaker,
                        kinds=self.jobs,
                        batch_size=settings.job_batch_size,
                        poll_interval=settings.job_poll_interval_seconds,
                    )
                    self._spawn(self.job_runner.run(), "jobs")
                for name, worker in self.workers:
                    self._spawn(worker(self), name)
            if self.run_consumers:
                for spec in self.consumers:
                    runner = ConsumerRunner(
                        name=settings.kafka_group_prefix + spec.name,
                        topics=list(spec.topics),
                        handlers=spec.handlers,
                        sessionmaker=self.sessionmaker,
                        bootstrap_servers=settings.kafka_bootstrap_servers,
                        producer_factory=lambda: create_producer(settings, role="dlq"),
                        max_attempts=settings.consumer_max_attempts,
                        backoff_seconds=settings.consumer_retry_backoff_seconds,
                        client_id=f"{settings.kafka_client_prefix}-{spec.name}",
                    )
                    self.runners.append(runner)
                    self._spawn(runner.run(), spec.name)
            yield self
        finally:
            await self._shutdown()

    @property
    def stopping(self) -> asyncio.Event:
        """Set when the process shuts down; background workers watch it."""
        return self._stopping

    async def _housekeeping(self, every_seconds: float = 600.0) -> None:
        """Expire idempotency keys, old inbox rows and finished jobs; errors wait for the next
        round."""
        while not self._stopping.is_set():
            try:
                async with session_scope(self.sessionmaker) as session:
                    await reap_expired_keys(
                        session, older_than_hours=self.settings.idempotency_key_ttl_hours
                    )
                    await prune_inbox(session, older_than_days=self.settings.inbox_retention_days)
                    if self.jobs:
                        await prune_jobs(session, older_than_days=self.settings.job_retention_days)
            except Exception as exc:
                log.warning("service.housekeeping_failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=every_seconds)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.settings.service_name}:{name}")
        task.add_done_callback(self._log_crash)
        self._tasks.append(task)

    @staticmethod
    def _log_crash(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "service.task_crashed", extra={"task": task.get_name()}, exc_info=task.exception()
            )

    async def _shutdown(self) -> None:
        self._stopping.set()
        if self.relay is not None:
            self.relay.stop()
        if self.job_runner is not None:
            self.job_runner.stop()
        for runner in self.runners:
            runner.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.engine.dispose()

    async def check_ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.engine), timeout=2)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            await asyncio.wait_for(broker_reachable(self.settings), timeout=3)
            checks["broker"] = "ok"
        except Exception as exc:
            checks["broker"] = f"down: {type(exc).__name__}"
        return checks


def get_runtime(request: Request) -> ServiceRuntime:
    return app_state(request, "runtime", ServiceRuntime)


def typed_settings(settings_class: type[SettingsT]) -> Callable[[Request], SettingsT]:
    """``settings_class`` of the request's app, checked rather than cast: usable as a dependency
    (``Annotated[RegistrySettings, Depends(typed_settings(RegistrySettings))]``) and as a plain
    call from a handler that has the request."""

    def settings(request: Request) -> SettingsT:
        return app_state(request, "settings", settings_class)

    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's unit of work: commits after the endpoint returns, rolls back if it raises."""
    runtime = get_runtime(request)
    async with runtime.sessionmaker() as session, session.begin():
        yield session


# A 2xx means committed. FastAPI runs the exit of a yield dependency after the response has been
# sent unless it is ``scope="function"``: then it runs when the endpoint has returned and its
# answer is serialized, before the first byte goes out. So the COMMIT happens first, and a
# COMMIT that fails (a deferred constraint, a serialization failure, the database gone) reaches
# the problem handlers as the error it is instead of following a 201 the client already has.
# A dependency scope rather than a middleware: the commit stays in the dependency that opened
# the transaction, and the route's own error handling sees it. ``create_service_app`` refuses
# routes that open a yield dependency of the request scope (see ``_commits_before_answering``).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _yield_dependencies_of_request_scope(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        yield from _yield_dependencies_of_request_scope(sub)
        generator = inspect.isasyncgenfunction(sub.call) or inspect.isgeneratorfunction(sub.call)
        if generator and sub.scope != "function":
            yield getattr(sub.call, "__qualname__", repr(sub.call))


def _api_routes(router: APIRouter) -> Iterator[APIRoute]:
    """Every route of ``router`` and of the routers included in it (FastAPI keeps those nested)."""
    for route in router.routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if isinstance(included, APIRouter):
            yield from _api_routes(included)


def _commits_before_answering(app: FastAPI) -> None:
    """Refuse to build an app with a route whose yield dependency would end (commit, release a
    lock) only after the answer has gone out: the defect ``SessionDep``'s scope exists to stop."""
    late = {
        f"{'/'.join(sorted(route.methods or ()))} {route.path}: {name}"
        for route in _api_routes(app.router)
        for name in _yield_dependencies_of_request_scope(route.dependant)
    }
    if late:
        raise RuntimeError(
            "yield dependencies must be Depends(..., scope='function') so that they finish "
            "before the response is sent: " + "; ".join(sorted(late))
        )


async def _details(runtime: ServiceRuntime, readiness_details: ReadinessDetails) -> dict[str, Any]:
    """``readiness_details(runtime)``, or what kept it from answering: details that fail are
    reported, they never fail readiness."""
    try:
        return dict(await asyncio.wait_for(readiness_details(runtime), timeout=2))
    except Exception as exc:
        log.warning("service.readiness_details_failed", extra={"error": repr(exc)})
        return {"unavailable": type(exc).__name__}


def _operations_router(readiness_details: ReadinessDetails | None = None) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    readiness_problems = problem_responses(ServiceUnavailable)
    readiness_problems.pop(422)  # it takes no parameters
    readiness_problems[503]["description"] += " (a dependency is down: see `checks`)"

    @router.get(
        "/readyz",
        summary="Readiness: the database and the broker answer",
        responses=readiness_problems,
    )
    async def readyz(request: Request) -> dict[str, Any]:
        runtime = get_runtime(request)
        checks = await runtime.check_ready()
        details = (
            {}
            if readiness_details is None
            else {"details": await _details(runtime, readiness_details)}
        )
        if any(value != "ok" for value in checks.values()):
            raise ServiceUnavailable("not ready", checks=checks, **details)
        return {"status": "ok", "checks": checks, **details}

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        body, content_type = metrics_response()
        return Response(body, media_type=content_type)

    return router


def create_service_app(
    settings: SharedSettings,
    *,
    title: str,
    description: str,
    version: str,
    routers: Sequence[APIRouter],
    consumers: Sequence[ConsumerSpec] = (),
    run_relay: bool = True,
    run_consumers: bool = True,
    openapi_tags: list[dict[str, Any]] | None = None,
    on_startup: Callable[[ServiceRuntime], Any] | None = None,
    body_limits: Mapping[str, int] | None = None,
    workers: Sequence[tuple[str, BackgroundWorker]] = (),
    jobs: Mapping[str, JobKind] | None = None,
    inner_middleware: Sequence[Middleware] = (),
    readiness_details: ReadinessDetails | None = None,
) -> FastAPI:
    """The service's FastAPI app. ``body_limits`` overrides ``settings.max_body_bytes`` under
    path prefixes (file uploads), see :class:`~shared.errors.BodySizeLimitMiddleware`.
    ``workers`` are named background loops started where the relay runs, and so are the runners
    of ``jobs`` (kind -> :class:`~shared.jobs.JobKind`; the service migrates its ``job`` table).
    ``inner_middleware`` run inside the tracing and body-limit middleware, right before FastAPI's
    routing (a hot path that answers some requests itself still gets traces and metrics).
    ``readiness_details`` adds ``details`` to ``/readyz`` (see :data:`ReadinessDetails`)."""
    runtime = ServiceRuntime(
        settings,
        consumers=consumers,
        run_relay=run_relay,
        run_consumers=run_consumers,
        workers=workers,
        jobs=jobs or {},
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.running():
            app.state.runtime = runtime
            if on_startup is not None:
                await on_startup(runtime)
            yield

    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        openapi_tags=openapi_tags,
        # Simpul traces and measures every request itself (shared.observability: traceparent,
        # Prometheus); FastAPI's own OpenTelemetry would look for providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    install_openapi_completion(app)
    if settings.jwt_public_key is not None:
        app.state.token_verifier = TokenVerifier(
            settings.jwt_public_key.get_secret_value(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    install_problem_handlers(app)
    # add_middleware puts each one outermost: the inner ones go first.
    for middleware in reversed(inner_middleware):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, limits=body_limits
    )
    app.add_middleware(TraceContextMiddleware, service=settings.service_name)
    app.include_router(_operations_router(readiness_details))
    for router in routers:
        app.include_router(router)
    _commits_before_answering(app)
    return app
