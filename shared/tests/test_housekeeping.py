"""Expiry of idempotency keys and inbox rows."""

from __future__ import annotations

from sqlalchemy import text

from shared.consumer import prune_inbox
from shared.db import session_scope
from shared.idempotency import reap_expired_keys

from .conftest import OutboxDatabase


class TestHousekeeping:
    async def test_expired_idempotency_keys_go_and_fresh_ones_stay(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await session.execute(
                text(
                    "INSERT INTO idempotency_key "
                    "(agency, key, method_path, request_sha256, created_at) "
                    "VALUES ('A', 'old-key-1', 'POST /x', 'h', now() - interval '25 hours'), "
                    "('A', 'new-key-1', 'POST /x', 'h', now())"
                )
            )
        async with session_scope(outbox_db.sessionmaker) as session:
            assert await reap_expired_keys(session, older_than_hours=24) == 1
        rows = await outbox_db.fetch("SELECT key FROM idempotency_key")
        assert [r["key"] for r in rows] == ["new-key-1"]

    async def test_inbox_rows_older_than_retention_are_pruned(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with session_scope(outbox_db.sessionmaker) as session:
            await session.execute(
                text(
                    "INSERT INTO inbox_event "
                    "(consumer, event_id, event_type, outcome, received_at) "
                    "VALUES ('c', 'old', 't', 'handled', now() - interval '31 days'), "
                    "('c', 'new', 't', 'handled', now())"
                )
            )
        async with session_scope(outbox_db.sessionmaker) as session:
            assert await prune_inbox(session, older_than_days=30) == 1
        rows = await outbox_db.fetch("SELECT event_id FROM inbox_event")
        assert [r["event_id"] for r in rows] == ["new"]
