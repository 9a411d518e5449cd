"""``python -m programs rebuild-facts``, run in-process on the test broker beside the running
service: the registry read model emptied and replayed from the topics is the one the consumer
built, and the consumer goes on as before."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from typer.testing import CliRunner

from programs.__main__ import cli
from programs.facts.rebuild import rebuild_facts
from programs.settings import ProgramsSettings
from shared.testing import RunningService, eventually, fetch, publish_events, stable_uuid

from .factories import known_person
from .registry_events import (
    DECILE_CHANGED,
    HOUSEHOLD_TOPIC,
    PERSON_TOPIC,
    UPDATED,
    handled,
    household_event,
    person_event,
    person_row,
)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def facts_of(
    settings: ProgramsSettings, people: list[uuid.UUID], households: list[uuid.UUID]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    persons = await fetch(
        settings, "SELECT * FROM person_fact WHERE person_id = ANY($1) ORDER BY person_id", people
    )
    cards = await fetch(
        settings,
        "SELECT * FROM household_fact WHERE household_id = ANY($1) ORDER BY household_id",
        households,
    )
    return [dict(r) for r in persons], [dict(r) for r in cards]


async def inbox_ids(settings: ProgramsSettings, ids: list[str]) -> set[str]:
    consumer = settings.kafka_group_prefix + "programs"
    rows = await fetch(
        settings,
        "SELECT event_id FROM inbox_event WHERE consumer = $1 AND event_id = ANY($2::text[])",
        consumer,
        ids,
    )
    return {r["event_id"] for r in rows}


class TestRebuildFacts:
    async def test_the_replay_restores_the_facts_the_consumer_built(
        self, programs_service: RunningService, programs_settings: ProgramsSettings, seed: str
    ) -> None:
        cards = [stable_uuid(f"{seed}/card/{n}") for n in range(2)]
        people = [stable_uuid(f"{seed}/person/{n}") for n in range(3)]
        households = [
            household_event(cards[0]),
            household_event(cards[0], type=DECILE_CHANGED, version=3, decile=5),
            household_event(cards[0], type=UPDATED, version=2, decile=1),  # older: ignored
            household_event(cards[1], house_fit=True, floor="ceramic"),
        ]
        persons = [
            person_event(people[0], household_id=cards[0]),
            person_event(people[1], household_id=cards[0], relationship="child"),
            person_event(
                people[1],
                household_id=cards[1],
                type="registry.person.moved.v1",
                version=2,
                relationship="spouse",
                from_village_code="1771011001",
                from_household_id=str(cards[0]),
            ),
            person_event(people[2], household_id=None, disability="mental", version=4),
        ]
        await publish_events(programs_settings, HOUSEHOLD_TOPIC, *households)
        await publish_events(programs_settings, PERSON_TOPIC, *persons)
        await eventually(
            lambda: handled(programs_settings, *households, *persons), what="the consumer built"
        )
        built = await facts_of(programs_settings, people, cards)
        assert {p["person_id"]: p["household_id"] for p in built[0]} == {
            people[0]: cards[0],
            people[1]: cards[1],
            people[2]: None,
        }
        assert [c["version"] for c in built[1] if c["household_id"] == cards[0]] == [3]
        # A fact no registry event stands behind (written beside the consumer): not rebuilt.
        stray = uuid.UUID(await known_person(programs_settings))

        report = await rebuild_facts(programs_settings, idle_timeout=60)

        assert await facts_of(programs_settings, people, cards) == built
        assert (
            await fetch(programs_settings, "SELECT 1 FROM person_fact WHERE person_id = $1", stray)
            == []
        )
        assert report.group.startswith(programs_settings.kafka_group_prefix + "programs-rebuild-")
        assert report.records >= len(households) + len(persons)
        assert report.outcomes["handled_or_duplicate"] >= len(households) + len(persons)
        assert {key.split("/")[0] for key in report.end_offsets} == {PERSON_TOPIC, HOUSEHOLD_TOPIC}
        # The replay claimed the events again under the live consumer's name ...
        ids = [e.id for e in households + persons]
        assert await inbox_ids(programs_settings, ids) == set(ids)
        # ... and the live consumer goes on from where it was.
        moved_again = person_event(
            people[0],
            household_id=cards[1],
            type="registry.person.moved.v1",
            version=2,
            from_village_code="1771011001",
            from_household_id=str(cards[0]),
        )
        await publish_events(programs_settings, PERSON_TOPIC, moved_again)
        await eventually(lambda: handled(programs_settings, moved_again), what="live after rebuild")
        row = await person_row(programs_settings, people[0])
        assert (row["household_id"], row["version"]) == (cards[1], 2)

    async def test_it_forgets_only_the_live_consumers_registry_inbox_rows(
        self, programs_service: RunningService, programs_settings: ProgramsSettings
    ) -> None:
        consumer = programs_settings.kafka_group_prefix + "programs"
        await fetch(
            programs_settings,
            "INSERT INTO inbox_event (consumer, event_id, event_type, outcome) VALUES "
            "($1, $2, 'referrals.referral.created.v1', 'handled'), "
            "($3, $4, 'registry.person.registered.v1', 'handled')",
            consumer,
            str(stable_uuid("rebuild/referral event")),
            "another-consumer",
            str(stable_uuid("rebuild/another consumer's event")),
        )
        await rebuild_facts(programs_settings, idle_timeout=60)
        kept = await fetch(
            programs_settings,
            "SELECT event_id FROM inbox_event WHERE event_id = ANY($1::text[])",
            [
                str(stable_uuid("rebuild/referral event")),
                str(stable_uuid("rebuild/another consumer's event")),
            ],
        )
        assert len(kept) == 2


def test_the_command_is_on_the_command_line() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    assert "rebuild-facts" in result.output
