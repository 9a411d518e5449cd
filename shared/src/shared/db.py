"""Database plumbing: one engine and sessionmaker per service database.

The edge owns the transaction: the request dependency (:func:`session_scope` through
``SessionDep`` in each service) and the consumer runner commit or roll back; business code only
``add``/``flush``es.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import DateTime, MetaData, func, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Mapped, mapped_column

__all__ = [
    "NAMING_CONVENTION",
    "TimestampMixin",
    "create_engine",
    "create_sessionmaker",
    "create_statement_pool",
    "make_metadata",
    "session_scope",
    "sync_url",
]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_metadata() -> MetaData:
    """A fresh MetaData with the house naming convention (one per service)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    modified_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


def _server_settings(application_name: str) -> dict[str, str]:
    """Safeguards every connection of every service role has.

    ``idle_in_transaction_session_timeout`` stops a forgotten transaction from holding back
    ``xmin`` (outbox bloat) and the NOTIFY queue; ``statement_timeout`` bounds any one query.
    """
    return {
        "application_name": application_name,
        "idle_in_transaction_session_timeout": "60000",
        "statement_timeout": "30000",
        "lock_timeout": "10000",
    }


def create_engine(
    url: str, *, pool_size: int = 10, application_name: str = "simpul"
) -> AsyncEngine:
    """An asyncpg engine with the safeguards of :func:`_server_settings`."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        # No overflow: connections opened above the pool are closed on return, so under load
        # every extra request would pay a new PostgreSQL backend. Requests queue instead.
        max_overflow=0,
        # No pre-ping: it costs a round trip on every checkout of the hot lookup path. Stale
        # connections are recycled instead, and a dropped one fails one request (readiness
        # probes take a pod out while its database is away).
        pool_recycle=300,
        connect_args={"server_settings": _server_settings(application_name)},
    )


class _StatementConnection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that skips asyncpg's reset query on release.

    The reset (``RESET ALL; UNLISTEN *; ...``) is one more round trip per checkout; the
    connections of :func:`create_statement_pool` only ever run single statements outside any
    transaction, so there is no session state to reset.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_statement_pool(
    url: str, *, size: int = 10, application_name: str = "simpul", wait_for_flush: bool = True
) -> asyncpg.Pool:
    """A plain asyncpg pool for hot single-statement paths that need no ORM session.

    Same database, same safeguards as :func:`create_engine`; a statement run on it commits by
    itself (autocommit), so it must be the whole unit of work. ``wait_for_flush=False`` gives
    its connections ``synchronous_commit = off``: a commit returns before its WAL reaches the
    disk, and a crash of PostgreSQL (not of the caller) can lose the last few hundred
    milliseconds of commits, never half of one. Only for statements whose writes may be lost
    that way.
    """
    server_settings = _server_settings(application_name)
    if not wait_for_flush:
        server_settings["synchronous_commit"] = "off"
    return await asyncpg.create_pool(
        sync_url(url),
        min_size=1,
        max_size=size,
        max_inactive_connection_lifetime=300,
        connection_class=_StatementConnection,
        server_settings=server_settings,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends cleanly, roll back when it raises."""
    async with sessionmaker() as session, session.begin():
        yield session


def sync_url(url: str) -> str:
    """The same database for tools that want the async URL's plain form (asyncpg DSN)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def ping(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT 1"))
