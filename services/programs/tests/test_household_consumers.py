"""Programs' read model of registry households, and the card fields of person facts, follow the
registry's events on the real broker; how far behind they are shows in /metrics and /readyz."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from programs.app import create_app
from programs.settings import ProgramsSettings
from shared.testing import RunningService, eventually, publish_events, running_service, stable_uuid

from .registry_events import (
    DECILE_CHANGED,
    HOUSEHOLD_TOPIC,
    MERGED,
    PERSON_TOPIC,
    POOR_HOUSE,
    REGISTERED,
    SPLIT,
    UPDATED,
    handled,
    household_event,
    household_row,
    person_event,
    person_row,
)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


class TestHouseholdFacts:
    @pytest.mark.parametrize("type", [REGISTERED, UPDATED, DECILE_CHANGED, SPLIT, MERGED])
    async def test_every_household_event_type_applies_its_snapshot(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        seed: str,
        type: str,
    ) -> None:
        household_id = stable_uuid(seed)
        event = household_event(household_id, type=type, version=2, decile=None, wall="brick")
        await publish_events(programs_settings, HOUSEHOLD_TOPIC, event)
        await eventually(lambda: handled(programs_settings, event), what=f"{type} handled")
        row = await household_row(programs_settings, household_id)
        assert dict(row) == {
            "household_id": household_id,
            "village_code": "1771011001",
            **POOR_HOUSE,
            "decile": None,
            "wall": "brick",
            "version": 2,
            "as_of": event.time,
        }

    async def test_an_older_version_never_overwrites_a_newer_fact(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        household_id = stable_uuid(seed)
        newer = household_event(household_id, type=DECILE_CHANGED, version=3, decile=5)
        # Later by the registry's clock, older by its row version: the version decides.
        older = household_event(
            household_id, type=UPDATED, version=2, decile=1, time=newer.time + timedelta(hours=1)
        )
        await publish_events(programs_settings, HOUSEHOLD_TOPIC, newer, older)
        # Same key, same partition: once the older event is handled, the newer one was too.
        await eventually(lambda: handled(programs_settings, older), what="older event handled")
        row = await household_row(programs_settings, household_id)
        assert (row["version"], row["decile"], row["as_of"]) == (3, 5, newer.time)

    async def test_a_dissolved_card_stays_a_fact(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        household_id = stable_uuid(seed)
        registered = household_event(household_id)
        dissolved = household_event(household_id, type=UPDATED, version=2, status="dissolved")
        await publish_events(programs_settings, HOUSEHOLD_TOPIC, registered, dissolved)
        await eventually(lambda: handled(programs_settings, dissolved), what="merge handled")
        row = await household_row(programs_settings, household_id)
        assert (row["status"], row["version"]) == ("dissolved", 2)


class TestPersonCardFields:
    async def test_card_relationship_and_disability_follow_the_person(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        person_id, first_card, second_card = (stable_uuid(f"{seed}/{n}") for n in range(3))
        registered = person_event(person_id, household_id=first_card, disability="physical")
        moved = person_event(
            person_id,
            household_id=second_card,
            type="registry.person.moved.v1",
            version=2,
            relationship="spouse",
            disability="physical",
            from_village_code="1771011001",
            from_household_id=str(first_card),
        )
        left = person_event(
            person_id,
            household_id=None,
            type="registry.person.moved.v1",
            version=3,
            relationship="other",
            from_village_code="1771011001",
            from_household_id=str(second_card),
        )
        await publish_events(programs_settings, PERSON_TOPIC, registered)
        await eventually(lambda: handled(programs_settings, registered), what="registration")
        assert await _card_fields(programs_settings, person_id) == (first_card, "head", "physical")
        await publish_events(programs_settings, PERSON_TOPIC, moved)
        await eventually(lambda: handled(programs_settings, moved), what="move")
        assert await _card_fields(programs_settings, person_id) == (
            second_card,
            "spouse",
            "physical",
        )
        await publish_events(programs_settings, PERSON_TOPIC, left)
        await eventually(lambda: handled(programs_settings, left), what="leaving the card")
        assert await _card_fields(programs_settings, person_id) == (None, "other", "none")

    async def test_a_producer_without_card_fields_gets_the_registry_defaults(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        person_id = stable_uuid(seed)
        bare = person_event(person_id, household_id=None)
        for name in ("household_id", "relationship", "disability"):
            del bare.data[name]
        await publish_events(programs_settings, PERSON_TOPIC, bare)
        await eventually(lambda: handled(programs_settings, bare), what="bare event handled")
        assert await _card_fields(programs_settings, person_id) == (None, "other", "none")


class TestLag:
    async def test_the_gauge_and_readyz_follow_the_newest_applied_event(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        before = await _registry_details(programs_service)
        # Now, by this machine's clock: newer than anything applied before.
        event = household_event(stable_uuid(seed), time=datetime.now(UTC))
        await publish_events(programs_settings, HOUSEHOLD_TOPIC, event)
        await eventually(lambda: handled(programs_settings, event), what="event handled")
        after = await _registry_details(programs_service)
        assert after["newest_event_at"] == event.time.isoformat()
        assert (
            before["newest_event_at"] is None or before["newest_event_at"] < event.time.isoformat()
        )
        assert 0 <= after["lag_seconds"] < 60
        [gauge] = await _samples(
            programs_service,
            "simpul_read_model_lag_seconds",
            {"service": "programs", "model": "registry"},
        )
        assert 0 <= gauge < 60
        # Lag in records: every registry partition this consumer holds reports, and reaches 0.
        caught_up = await eventually(
            lambda: _caught_up(programs_service), what="the consumer reports it caught up"
        )
        assert any(key.startswith(f"{HOUSEHOLD_TOPIC}/") for key in caught_up["lag_records"])
        consumer = programs_settings.kafka_group_prefix + "programs"
        records = await _samples(
            programs_service,
            "simpul_consumer_lag_records",
            {"consumer": consumer, "topic": HOUSEHOLD_TOPIC},
        )
        assert records
        assert set(records) == {0}

    async def test_an_api_process_says_it_has_no_consumer(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        app = create_app(programs_settings, run_relay=False, run_consumers=False)
        async with running_service(app) as api:
            ready = await api.client.get("/readyz")
        assert ready.status_code == 200, ready.text
        registry = ready.json()["details"]["read_model"]["registry"]
        assert registry["consumer"] == "not running in this process"
        assert set(registry) == {"lag_seconds", "newest_event_at", "consumer"}


async def _card_fields(
    settings: ProgramsSettings, person_id: uuid.UUID
) -> tuple[uuid.UUID | None, str, str]:
    row = await person_row(settings, person_id)
    return row["household_id"], row["relationship"], row["disability"]


async def _registry_details(service: RunningService) -> dict[str, Any]:
    ready = await service.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    details: dict[str, Any] = ready.json()["details"]["read_model"]["registry"]
    return details


async def _caught_up(service: RunningService) -> dict[str, Any] | None:
    details = await _registry_details(service)
    return details if details.get("caught_up") else None


async def _samples(service: RunningService, name: str, labels: dict[str, str]) -> list[float]:
    """The values of ``name``'s samples in /metrics whose labels include ``labels``."""
    text = (await service.client.get("/metrics")).text
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
