"""The pieces the plugin's fixtures are made of; usable from any test or benchmark."""

from __future__ import annotations

import asyncio
import os
import subprocess
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
from shared.embedded import EmbeddedPostgres, EmbeddedTansu, free_port
from shared.migrations import upgrade
from shared.settings import BrokerProfile, SharedSettings

__all__ = [
    "BrokerHandle",
    "asgi_lifespan",
    "fetch",
    "without_instance",
    "DatabaseServer",
    "RunningService",
    "eventually",
    "repo_root",
    "running_service",
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
