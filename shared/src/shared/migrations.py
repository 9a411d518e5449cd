"""Alembic, one history per service database.

Each service's ``migrations/env.py`` is two lines that call :func:`run_env`; the runner and the
test harness call :func:`upgrade` with a URL. Tests build their schema only through these
migrations, never with ``create_all``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

__all__ = ["alembic_config", "run_env", "upgrade"]


def alembic_config(service_root: Path, database_url: str) -> Config:
    config = Config(str(service_root / "alembic.ini"))
    config.set_main_option("script_location", str(service_root / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def upgrade(service_root: Path, database_url: str, revision: str = "head") -> None:
    """Migrate a database to ``revision`` (blocking; call it in a thread from async code)."""
    command.upgrade(alembic_config(service_root, database_url), revision)


def _drop_empty_revisions(
    context: MigrationContext, revision: Any, directives: list[MigrationScript]
) -> None:
    options = getattr(context.config, "cmd_opts", None)
    if getattr(options, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops is not None and script.upgrade_ops.is_empty():
            directives[:] = []


def run_env(target_metadata: MetaData, settings_url: Callable[[], str]) -> None:
    """Body of a service's ``env.py``: online, async, with type comparison on.

    The URL is the one :func:`upgrade` set, else the service's settings (plain ``alembic``).
    """
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url") or settings_url()

    def do_run(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            process_revision_directives=_drop_empty_revisions,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
        await engine.dispose()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    else:
        asyncio.run(run_async())
