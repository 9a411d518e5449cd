"""Programs' read model follows registry events: in order, once, and never backwards."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from programs.settings import ProgramsSettings
from shared.db import sync_url
from shared.envelope import CloudEvent
from shared.testing import RunningService, eventually, publish_events

TOPIC = "registry.person.v1"


def person_event(person_id: uuid.UUID, *, type: str, time: datetime, **data: Any) -> CloudEvent:
    payload = {
        "person_id": str(person_id),
        "village_code": "1771011001",
        "birth_date": "1990-09-05",
        "sex": "F",
        "status": "alive",
        "version": 1,
        **data,
    }
    if payload["version"] is None:  # as an older producer, without a version, sends it
        del payload["version"]
    return CloudEvent(
        id=str(uuid.uuid4()),
        source="/simpul/registry",
        type=type,
        time=time,
        subject=str(person_id),
        data=payload,
    )


async def fact(settings: ProgramsSettings, person_id: uuid.UUID) -> asyncpg.Record | None:
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        # xmin: the transaction that last wrote the row, so a rewrite with equal values shows.
        return await conn.fetchrow(
            "SELECT *, xmin::text AS xmin FROM person_fact WHERE person_id = $1", person_id
        )
    finally:
        await conn.close()


class TestRegistryFacts:
    async def test_a_death_after_registration_is_applied(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        await publish_events(
            programs_settings,
            TOPIC,
            person_event(person_id, type="registry.person.registered.v1", time=now),
            person_event(
                person_id,
                type="registry.person.died.v1",
                time=now + timedelta(seconds=1),
                status="deceased",
                death_date="2026-11-01",
                version=2,
            ),
        )

        async def deceased() -> bool:
            row = await fact(programs_settings, person_id)
            return row is not None and row["status"] == "deceased"

        await eventually(deceased, what="death applied to the read model")

    async def test_an_older_event_never_overwrites_a_newer_fact(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        newer = person_event(
            person_id,
            type="registry.person.moved.v1",
            time=now,
            village_code="1701012001",
            from_village_code="1771011001",
            version=2,
        )
        older = person_event(
            person_id, type="registry.person.registered.v1", time=now - timedelta(days=1)
        )
        await publish_events(programs_settings, TOPIC, newer, older)
        # Same key, same partition: once the older event is handled, the newer one was too.
        await eventually(lambda: _handled(programs_settings, older.id), what="older event handled")
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert row["village_code"] == "1701012001"

    async def test_an_older_version_with_a_later_time_does_not_overwrite(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        # The clocks disagree with the order: the older version carries the later time.
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        newer = person_event(
            person_id,
            type="registry.person.died.v1",
            time=now - timedelta(hours=1),
            status="deceased",
            death_date="2026-11-01",
            version=3,
        )
        older = person_event(
            person_id, type="registry.person.updated.v1", time=now, disability="physical", version=2
        )
        await publish_events(programs_settings, TOPIC, newer, older)
        await eventually(lambda: _handled(programs_settings, older.id), what="older event handled")
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["status"], row["version"]) == ("deceased", 3)

    async def test_a_newer_version_with_an_earlier_time_is_applied(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        first = person_event(person_id, type="registry.person.registered.v1", time=now)
        moved = person_event(
            person_id,
            type="registry.person.moved.v1",
            time=now - timedelta(hours=1),
            village_code="1701012001",
            from_village_code="1771011001",
            version=2,
        )
        await publish_events(programs_settings, TOPIC, first, moved)
        await eventually(lambda: _handled(programs_settings, moved.id), what="newer event handled")
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["village_code"], row["version"]) == ("1701012001", 2)

    async def test_an_event_without_version_never_overwrites_a_versioned_fact(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        unversioned = person_event(
            person_id, type="registry.person.registered.v1", time=now, version=None
        )
        versioned = person_event(
            person_id, type="registry.person.updated.v1", time=now, sex="M", version=2
        )
        late = person_event(
            person_id,
            type="registry.person.updated.v1",
            time=now + timedelta(hours=1),
            status="moved",
            version=None,
        )
        await publish_events(programs_settings, TOPIC, unversioned)
        await eventually(
            lambda: _handled(programs_settings, unversioned.id), what="unversioned event handled"
        )
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["sex"], row["version"]) == ("F", None)  # applied as before versions
        await publish_events(programs_settings, TOPIC, versioned, late)
        await eventually(lambda: _handled(programs_settings, late.id), what="late event handled")
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["sex"], row["status"], row["version"]) == ("M", "alive", 2)

    async def test_a_redelivered_event_is_applied_once(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        # Unversioned events (an older producer) are ordered by time, and the later-read of two
        # at the same time wins: only the inbox stops a redelivered first one from winning again.
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        first = person_event(
            person_id, type="registry.person.registered.v1", time=now, version=None
        )
        correction = person_event(
            person_id,
            type="registry.person.updated.v1",
            time=now,
            village_code="1701012001",
            sex="M",
            version=None,
        )
        await publish_events(programs_settings, TOPIC, first, correction)
        await eventually(
            lambda: _handled(programs_settings, correction.id), what="correction handled"
        )
        applied = await fact(programs_settings, person_id)
        assert applied is not None
        assert (applied["village_code"], applied["sex"]) == ("1701012001", "M")

        # The broker delivers ``first`` again (same CloudEvent id); the poison event behind it on
        # the same key changes no fact, and once it is parked the redelivery was read too.
        poison = person_event(person_id, type="registry.person.registered.v1", time=now, sex="X")
        await publish_events(programs_settings, TOPIC, first, poison)
        await eventually(lambda: _handled(programs_settings, poison.id), what="poison parked")
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["village_code"], row["sex"]) == ("1701012001", "M"), "redelivery re-applied"
        assert dict(row) == dict(applied)
        assert row["xmin"] == applied["xmin"], "the fact's row was rewritten by the redelivery"

    async def test_poison_is_parked_and_later_events_still_apply(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        person_id, now = uuid.uuid4(), datetime.now(UTC)
        event = person_event(person_id, type="registry.person.registered.v1", time=now)
        poison = person_event(person_id, type="registry.person.registered.v1", time=now, sex="X")
        after = person_event(
            person_id,
            type="registry.person.updated.v1",
            time=now + timedelta(seconds=1),
            disability="physical",
            version=2,
        )
        await publish_events(programs_settings, TOPIC, event, event, poison, after)
        await eventually(lambda: _handled(programs_settings, after.id), what="event after poison")
        outcomes = await _outcomes(programs_settings, [event.id, poison.id, after.id])
        assert outcomes == {event.id: "handled", poison.id: "dead_lettered", after.id: "handled"}
        row = await fact(programs_settings, person_id)
        assert row is not None
        assert (row["sex"], row["version"]) == ("F", 2)


async def _outcomes(settings: ProgramsSettings, ids: list[str]) -> dict[str, str]:
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        rows = await conn.fetch(
            "SELECT event_id, outcome FROM inbox_event WHERE event_id = ANY($1::text[])", ids
        )
    finally:
        await conn.close()
    return {r["event_id"]: r["outcome"] for r in rows}


async def _handled(settings: ProgramsSettings, event_id: str) -> bool:
    return bool(await _outcomes(settings, [event_id]))
