"""The service-level tier: call a use case (``async def f(session, *, ..., caller)``) directly, on
a real database, without HTTP, and leave no row behind.

SQLAlchemy 2.0's "Joining a Session into an External Transaction": the session is bound to a
connection inside an outer transaction that is rolled back when the test ends. With
``join_transaction_mode="create_savepoint"`` the session's own transaction is a SAVEPOINT, so
code that rolls back (or commits) still does what it means, and the outer transaction still
undoes everything at the end.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import DEVELOPMENT_SCOPES, Caller
from shared.db import create_engine
from shared.outbox import OUTBOX_TABLE

__all__ = [
    "sequence_number",
    "make_caller",
    "rolled_back_session",
    "stable_number",
    "stable_uuid",
    "staged_event_types",
]

# Fixed, so that a seed names the same UUID in every run and on every machine.
_TEST_DATA_NAMESPACE = uuid.UUID("5f1c0e8a-3d2b-4c4e-9a57-7b1e2d3c4f50")
_SEQUENCE = itertools.count(1)


@asynccontextmanager
async def rolled_back_session(database_url: str) -> AsyncIterator[AsyncSession]:
    """A session on ``database_url`` whose every write is rolled back when the block ends.

    Configured as the services' own sessions are (``shared.db.create_sessionmaker``): no
    autoflush, no expiry on commit, so a use case behaves as it does behind a route.
    """
    # One connection: the test holds it for its whole transaction, nothing else shares it.
    engine = create_engine(database_url, pool_size=1, application_name="simpul-tests")
    try:
        async with engine.connect() as connection:
            outer = await connection.begin()
            session = AsyncSession(
                bind=connection,
                join_transaction_mode="create_savepoint",
                expire_on_commit=False,
                autoflush=False,
            )
            try:
                yield session
            finally:
                await session.close()
                await outer.rollback()
    finally:
        await engine.dispose()


async def staged_event_types(session: AsyncSession, *, key: str) -> list[str]:
    """The types of the events a use case staged in the outbox under ``key``, in order: seen
    from inside the transaction, before any relay could send them."""
    rows = await session.execute(
        text(f"SELECT event_type FROM {OUTBOX_TABLE} WHERE key = :key ORDER BY id"), {"key": key}
    )
    return list(rows.scalars())


def make_caller(
    *,
    agency: str = "KEMENSOS",
    scopes: Iterable[str] = DEVELOPMENT_SCOPES,
    regions: Iterable[str] = (),
    subject: str = "tester",
) -> Caller:
    """The :class:`~shared.auth.Caller` that a token minted with the same arguments (the
    ``mint`` fixture, same defaults) verifies to, for use cases called without a token."""
    return Caller(subject=subject, agency=agency, scopes=frozenset(scopes), regions=tuple(regions))


def stable_number(seed: str, *, below: int) -> int:
    """A number in ``[0, below)`` that depends on ``seed`` alone: the same in every run, unlike
    ``random`` or ``hash`` (salted per process). Seed with ``request.node.nodeid`` for data
    unique to a test."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") % below


def stable_uuid(seed: str) -> uuid.UUID:
    """A UUID that depends on ``seed`` alone (see :func:`stable_number`)."""
    return uuid.uuid5(_TEST_DATA_NAMESPACE, seed)


def sequence_number() -> int:
    """1, 2, 3, ... for the whole test process: the source of unique test data (NIKs, KK
    numbers) that every module shares, so two builders never hand out the same value and a
    failing run repeats exactly (no ``random``)."""
    return next(_SEQUENCE)
