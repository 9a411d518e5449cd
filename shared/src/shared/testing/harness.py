"""The pieces the plugin's fixtures are made of; usable from any test or benchmark."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message

from shared.db import sync_url
from shared.embedded import EmbeddedPostgres, EmbeddedTansu, free_port, port_open
from shared.migrations import upgrade
from shared.settings import BrokerProfile, SharedSettings

__all__ = [
    "BrokerHandle",
    "asgi_lifespan",
    "fetch",
    "without_instance",
    "DatabaseServer",
    "RunningService",
    "ServedApi",
    "commit_fault",
    "eventually",
    "reads_missing_their_write",
    "retries_not_replayed",
    "repo_root",
    "running_service",
    "served_api",
]

T = TypeVar("T")


def repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists():
            return parent
    return Path.cwd()


@dataclass
class DatabaseServer:
    """A PostgreSQL server the tests may create databases on."""

    admin_dsn: str
    embedded: EmbeddedPostgres | None = None

    @classmethod
    def start(cls, tmp_dir: Path) -> DatabaseServer:
        external = os.environ.get("DATABASE_URL")
        if external:
            return cls(admin_dsn=external.replace("postgresql+asyncpg://", "postgresql://", 1))
        server = EmbeddedPostgres(tmp_dir / "pgdata", port=free_port(), durable=False)
        server.start()
        return cls(admin_dsn=server.admin_url, embedded=server)

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()

    def url(self, database: str) -> str:
        base = self.admin_dsn.rsplit("/", 1)[0]
        return base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + database

    async def create_database(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return name

    async def migrated_database(self, prefix: str, service_root: Path) -> str:
        """A fresh database migrated to head with the service's own Alembic history."""
        url = self.url(await self.create_database(prefix))
        await asyncio.to_thread(upgrade, service_root, url)
        return url


@dataclass
class BrokerHandle:
    """The session's broker. ``restart`` exists for outage tests (in-memory Tansu loses topics)."""

    bootstrap_servers: str
    profile: BrokerProfile
    kind: str  # "tansu", "apache-kafka" or "external"
    tansu: EmbeddedTansu | None = None
    script: Path | None = None
    script_env: dict[str, str] | None = None

    @classmethod
    def start(cls, tmp_dir: Path) -> BrokerHandle:
        choice = os.environ.get("SIMPUL_TEST_BROKER", "tansu")
        if choice not in ("tansu", "kafka", "external"):
            raise ValueError(f"SIMPUL_TEST_BROKER={choice!r}: use tansu, kafka or external")
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if external:
            profile: BrokerProfile = "kafka" if choice == "kafka" else "tansu"
            return cls(bootstrap_servers=external, profile=profile, kind="external")
        if choice == "kafka":
            port = free_port()
            script = repo_root() / "scripts" / "kafka" / "apache-kafka.sh"
            env = {
                **os.environ,
                "SIMPUL_KAFKA_PORT": str(port),
                "SIMPUL_KAFKA_DATA": str(tmp_dir / "apache-kafka"),
            }
            handle = cls(
                bootstrap_servers=f"127.0.0.1:{port}",
                profile="kafka",
                kind="apache-kafka",
                script=script,
                script_env=env,
            )
            handle._script("start")
            return handle
        tansu = EmbeddedTansu(free_port(), log_path=tmp_dir / "tansu.log")
        tansu.start()
        return cls(
            bootstrap_servers=tansu.bootstrap_servers, profile="tansu", kind="tansu", tansu=tansu
        )

    @property
    def can_restart(self) -> bool:
        return self.kind != "external"

    @property
    def keeps_data_across_restart(self) -> bool:
        return self.kind == "apache-kafka"

    def stop(self) -> None:
        if self.tansu is not None:
            self.tansu.stop()
        elif self.script is not None:
            self._script("stop")

    def start_again(self) -> None:
        if self.tansu is not None:
            self.tansu.start()
        elif self.script is not None:
            self._script("start")

    def _script(self, command: str) -> None:
        assert self.script is not None
        subprocess.run(
            ["bash", str(self.script), command],
            env=self.script_env,
            check=True,
            stdout=subprocess.DEVNULL,
        )


@dataclass
class RunningService:
    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@asynccontextmanager
async def asgi_lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Start and stop ``app`` through the ASGI lifespan messages, as uvicorn does, so middleware
    that acts on them (closing a pool at shutdown) runs in tests too."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    lifespan: asyncio.Future[None] = asyncio.ensure_future(app(scope, to_app.get, from_app.put))

    async def answer(expected: str) -> None:
        reply: asyncio.Future[Message] = asyncio.ensure_future(from_app.get())
        either: set[asyncio.Future[Any]] = {reply, lifespan}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():
            reply.cancel()
            await lifespan  # raises what ended the app's lifespan
            raise RuntimeError(f"the app ended its lifespan without {expected}")
        if reply.result()["type"] != expected:
            await lifespan
            raise RuntimeError(f"lifespan: {reply.result()}")

    await to_app.put({"type": "lifespan.startup"})
    await answer("lifespan.startup.complete")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        await answer("lifespan.shutdown.complete")
        await lifespan


@asynccontextmanager
async def running_service(app: FastAPI) -> AsyncIterator[RunningService]:
    """Run the app's lifespan (relay, consumers) and talk to it over ASGI, no sockets."""
    async with asgi_lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield RunningService(app=app, client=client)


@dataclass(frozen=True)
class ServedApi:
    """A service's API in a process of its own, reached over TCP as a partner agency would."""

    base_url: str
    process: asyncio.subprocess.Process

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=30.0, **kwargs)


def _environment_of(settings: SharedSettings) -> dict[str, str]:
    """``settings`` as the environment variables its class reads (``REGISTRY_DATABASE_URL``...)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    env: dict[str, str] = {}
    for name, value in settings:
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"{prefix}{name}".upper()] = str(value)
    return env


@asynccontextmanager
async def served_api(service: str, settings: SharedSettings) -> AsyncIterator[ServedApi]:
    """Run ``python -m <service> api`` (uvicorn on a loopback port, as ``simpul run`` serves)
    on ``settings``' database, and stop it afterwards.

    In-process ``httpx.ASGITransport`` returns only once the whole ASGI call has ended, so it
    cannot see what a client sees about ordering, e.g. a 2xx sent before its commit. Only a
    real server can.
    """
    port = free_port()
    env = {**os.environ, **_environment_of(settings), "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", service, "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not port_open(port):
            if process.returncode is not None:
                raise RuntimeError(f"{service} api exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{service} api did not listen on {port} within 60 s")
            await asyncio.sleep(0.05)
        yield ServedApi(base_url=f"http://127.0.0.1:{port}", process=process)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def reads_missing_their_write(
    api: ServedApi,
    *,
    headers: dict[str, str],
    create: str,
    body: Callable[[], dict[str, Any]],
    read: Callable[[dict[str, Any]], str],
    params: dict[str, str] | None = None,
    clients: int = 8,
    rounds: int = 40,
) -> list[str]:
    """``clients`` clients at once each POST ``body()`` to ``create`` ``rounds`` times and GET
    ``read(answer)`` right after each 2xx; the reads that did not answer 200.

    Each client writes on one connection and reads on another, as a front end that posts and a
    screen that polls do: uvicorn finishes one request of a connection before it reads the next,
    so a read on the writing connection could not see an answer sent before its commit.
    """
    misses: list[str] = []

    async def client() -> None:
        async with api.client(headers=headers) as writer, api.client(headers=headers) as reader:
            for _ in range(rounds):
                created = await writer.post(create, json=body())
                assert created.is_success, created.text
                path = read(created.json())
                answer = await reader.get(path, params=params)
                if answer.status_code != 200:
                    misses.append(f"{path}: {answer.status_code}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return misses


async def retries_not_replayed(
    api: ServedApi,
    *,
    headers: dict[str, str],
    create: str,
    body: Callable[[], dict[str, Any]],
    clients: int = 8,
    rounds: int = 15,
) -> list[str]:
    """``clients`` clients at once each POST ``body()`` with a new Idempotency-Key and, as soon as
    the answer is in, the same request again on another connection (a client that timed out and
    retries); the retries that were not a replay of the first answer."""
    wrong: list[str] = []

    async def client() -> None:
        async with api.client(headers=headers) as first_try, api.client(headers=headers) as retry:
            for _ in range(rounds):
                request = body()
                key = {"Idempotency-Key": str(uuid.uuid4())}
                first = await first_try.post(create, json=request, headers=key)
                again = await retry.post(create, json=request, headers=key)
                assert first.is_success, first.text
                replayed = again.headers.get("Idempotent-Replayed") == "true"
                if not (replayed and again.status_code == first.status_code) or (
                    again.json() != first.json()
                ):
                    wrong.append(f"{again.status_code} {again.text[:120]}")

    await asyncio.gather(*(client() for _ in range(clients)))
    return wrong


@asynccontextmanager
async def commit_fault(
    settings: SharedSettings, *, table: str, when: str, action: str
) -> AsyncIterator[None]:
    """Make COMMIT slow or failing for the rows of ``table`` that match ``when`` (SQL over
    ``NEW``), through a deferred constraint trigger: every statement of the transaction succeeds,
    then ``action`` (PL/pgSQL) runs at COMMIT. ``PERFORM pg_sleep(0.05)`` stands in for a slow
    disk flush; ``RAISE EXCEPTION ... USING ERRCODE = 'check_violation'`` for a deferred
    constraint that fails."""
    name = f"test_commit_fault_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {when} THEN {action}; END IF;
                RETURN NULL;
            END $$;
            CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR UPDATE ON {table}
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}();
            """
        )
        yield
    finally:
        await conn.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}()")
        await conn.close()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within: float = 60.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy: events arrive asynchronously.

    ``within`` is a bound on waiting, not a performance claim: it is set far above the
    expected delay so that a slow machine is not a failure, and a lost event still is.
    """
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {within} s")
        await asyncio.sleep(interval)


async def fetch(settings: SharedSettings, sql: str, *args: object) -> list[asyncpg.Record]:
    """Rows of ``sql`` on a service's own database, read beside the app (what tests check)."""
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        return rows
    finally:
        await conn.close()


def without_instance(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem body without its ``instance``, to compare two answers for different paths."""
    return {key: value for key, value in problem.items() if key != "instance"}
