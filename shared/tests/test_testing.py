"""The test helpers of shared.testing: what the services' tests rely on them to do."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from fastapi import FastAPI
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.auth import TokenVerifier, generate_keypair, mint_token
from shared.envelope import from_kafka, new_event, to_kafka
from shared.outbox import add_event
from shared.settings import SharedSettings
from shared.testing import (
    make_caller,
    publish_events,
    rolled_back_session,
    service_fixtures,
    service_test_settings,
    stable_number,
    stable_uuid,
    staged_event_types,
)

from .conftest import OutboxDatabase, effect, read_topic, unique_topic


async def seqs(session: AsyncSession) -> list[int]:
    return list(await session.scalars(select(effect.c.seq).order_by(effect.c.seq)))


async def insert_effect(session: AsyncSession, seq: int) -> None:
    await session.execute(insert(effect).values(aggregate="a", seq=seq, event_id=f"e{seq}"))


class TestRolledBackSession:
    async def test_writes_are_seen_inside_and_nowhere_after(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with rolled_back_session(outbox_db.url) as session:
            await insert_effect(session, 1)
            assert await seqs(session) == [1]
            assert await outbox_db.fetch("SELECT seq FROM effect") == [], "seen uncommitted"
        assert await outbox_db.fetch("SELECT seq FROM effect") == []

    async def test_code_that_commits_or_rolls_back_still_leaves_nothing(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with rolled_back_session(outbox_db.url) as session:
            await insert_effect(session, 1)
            await session.commit()  # releases the session's SAVEPOINT, commits nothing
            await insert_effect(session, 2)
            await session.rollback()  # back to the SAVEPOINT taken after the "commit"
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await session.execute(insert(effect).values(aggregate=None, seq=3))
            assert await seqs(session) == [1]
        assert await outbox_db.fetch("SELECT seq FROM effect") == []

    async def test_a_failed_flush_does_not_break_the_rollback(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with rolled_back_session(outbox_db.url) as session:
            await insert_effect(session, 1)
            with pytest.raises(IntegrityError):
                await session.execute(insert(effect).values(aggregate=None, seq=2))
        async with rolled_back_session(outbox_db.url) as session:
            assert await session.scalar(select(func.count()).select_from(effect)) == 0


class TestStagedEventTypes:
    async def test_are_the_events_staged_under_the_key_in_order(
        self, outbox_db: OutboxDatabase
    ) -> None:
        async with rolled_back_session(outbox_db.url) as session:
            for key, type in [("a", "test.one.v1"), ("b", "test.other.v1"), ("a", "test.two.v1")]:
                await add_event(
                    session, source="/test", topic="test.v1", key=key, type=type, data={}
                )
            assert await staged_event_types(session, key="a") == ["test.one.v1", "test.two.v1"]
        assert await outbox_db.fetch("SELECT 1 FROM outbox_event") == []


class TestMakeCaller:
    def test_is_the_caller_a_minted_token_verifies_to(self) -> None:
        private, public = generate_keypair()
        token = mint_token(
            private, subject="clerk", agency="BPJS", scopes=["registry:read"], regions=["1771"]
        )
        verified = TokenVerifier(public, issuer="simpul", audience="simpul").verify(token)
        built = make_caller(
            subject="clerk", agency="BPJS", scopes=["registry:read"], regions=["1771"]
        )
        assert dataclasses.replace(verified, token_id=None) == built

    def test_defaults_to_a_national_caller_with_every_scope(self) -> None:
        caller = make_caller()
        assert (caller.is_national, caller.has_scope("registry:admin")) == (True, True)


class TestStableData:
    def test_depends_on_the_seed_alone(self) -> None:
        # Pinned: the same in every process and on every machine, unlike hash().
        assert stable_number("tests/test_x.py::test_y", below=10_000) == 9411
        assert str(stable_uuid("tests/test_x.py::test_y")) == "f388248e-7f6f-5b58-9251-fe03af97f51d"

    def test_different_seeds_differ(self) -> None:
        assert len({stable_uuid(f"seed-{n}") for n in range(100)}) == 100
        assert all(0 <= stable_number(f"seed-{n}", below=7) < 7 for n in range(100))


class TestPublishEvents:
    async def test_events_go_out_as_the_relay_encodes_them(self, settings: SharedSettings) -> None:
        topic = unique_topic()
        first, second = (
            new_event(source="/test", type="test.happened.v1", subject=s, data={"seq": n})
            for n, s in enumerate("ab")
        )
        ids = await publish_events(settings, topic, first, second)
        assert ids == [first.id, second.id]
        received = await read_topic(settings.kafka_bootstrap_servers, topic, expected=2)
        relay = [to_kafka(e, topic=topic, key=e.subject or "") for e in (first, second)]
        assert sorted(received) == sorted(
            (r.key.decode(), {k: v.decode() for k, v in r.headers}, r.value) for r in relay
        )

    async def test_a_mapping_is_the_data_of_a_new_event(self, settings: SharedSettings) -> None:
        topic = unique_topic()
        [event_id] = await publish_events(
            settings, topic, {"seq": 1}, type="test.happened.v1", source="/test", key="k-1"
        )
        [(key, headers, value)] = await read_topic(
            settings.kafka_bootstrap_servers, topic, expected=1
        )
        event = from_kafka(value, [(k, v.encode()) for k, v in headers.items()])
        assert (key, event.id, event.type, event.source, event.subject, event.data) == (
            "k-1",
            event_id,
            "test.happened.v1",
            "/test",
            "k-1",
            {"seq": 1},
        )

    async def test_a_mapping_without_type_or_key_is_refused(self, settings: SharedSettings) -> None:
        with pytest.raises(ValueError, match="type= and key="):
            await publish_events(settings, unique_topic(), {"seq": 1}, key="k-1")


class TestServiceFixtures:
    def test_are_named_for_the_service_and_ask_for_its_settings(self) -> None:
        fixtures = service_fixtures("demo", SharedSettings, lambda settings: FastAPI())
        asked = {
            kind: list(inspect.signature(getattr(fixtures, kind)).parameters)
            for kind in ("settings", "service", "api", "session")
        }
        assert asked == {
            "settings": ["database_server", "broker", "jwt_keys"],
            "service": ["demo_settings"],
            "api": ["demo_settings"],
            "session": ["demo_settings"],
        }

    async def test_a_setting_the_class_does_not_have_is_refused(self) -> None:
        with pytest.raises(TypeError, match="SharedSettings has no setting poll_seconds"):
            await service_test_settings(
                None,  # type: ignore[arg-type]
                None,  # type: ignore[arg-type]
                ("private", "public"),
                service="shared",
                settings_class=SharedSettings,
                group_prefix="t-",
                poll_seconds=0.1,
            )
