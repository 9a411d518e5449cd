"""The read model over HTTP: a household fact with its living members, region-walled and
audited, and the card fields of a person fact; the data arrive as registry events."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from programs.settings import ProgramsSettings
from shared.envelope import CloudEvent
from shared.testing import RunningService, eventually, fetch, publish_events, stable_uuid

from .factories import BENGKULU_SELATAN_VILLAGE
from .registry_events import (
    HOUSEHOLD_TOPIC,
    PERSON_TOPIC,
    handled,
    household_event,
    person_event,
)

PURPOSE = {"purpose": "PKH eligibility check"}


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def announced(settings: ProgramsSettings, household: CloudEvent, *people: CloudEvent) -> None:
    """Publish a card and its people as the registry would, and wait until programs has them."""
    await publish_events(settings, HOUSEHOLD_TOPIC, household)
    if people:
        await publish_events(settings, PERSON_TOPIC, *people)
    await eventually(lambda: handled(settings, household, *people), what="the card announced")


async def audited(settings: ProgramsSettings, household_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await fetch(
        settings,
        "SELECT purpose, agency FROM audit_log "
        "WHERE resource_type = 'household_fact' AND resource_id = $1",
        str(household_id),
    )
    return [(r["purpose"], r["agency"]) for r in rows]


class TestReadHouseholdFact:
    async def test_the_card_and_its_living_members(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
        seed: str,
    ) -> None:
        card = stable_uuid(f"{seed}/card")
        head, child, dead = (stable_uuid(f"{seed}/{who}") for who in ("head", "child", "dead"))
        await announced(
            programs_settings,
            household_event(card, version=4),
            person_event(head, household_id=card),
            person_event(child, household_id=card, relationship="child", birth_date="2014-05-01"),
            person_event(dead, household_id=card, relationship="parent", status="deceased"),
        )
        response = await programs_service.client.get(
            f"/v1/household-facts/{card}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        assert response.status_code == 200, response.text
        assert response.json() == {
            "household_id": str(card),
            "village_code": "1771011001",
            "decile": 2,
            "status": "active",
            "house_fit": False,
            "floor": "earth",
            "wall": "bamboo",
            "roof": "zinc",
            "water": "protected_well",
            "sanitation": "shared",
            "electricity": "pln_450",
            "version": 4,
            "as_of": "2026-11-01T08:00:00Z",
            "member_ids": sorted([str(head), str(child)]),
        }
        assert await audited(programs_settings, card) == [(PURPOSE["purpose"], "KEMENSOS")]

    async def test_a_card_outside_the_callers_region_reads_as_missing(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
        seed: str,
    ) -> None:
        card = stable_uuid(seed)
        await announced(
            programs_settings, household_event(card, village_code=BENGKULU_SELATAN_VILLAGE)
        )
        outside = await programs_service.client.get(
            f"/v1/household-facts/{card}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        unknown = await programs_service.client.get(
            f"/v1/household-facts/{stable_uuid(f'{seed}/never announced')}",
            params=PURPOSE,
            headers=auth_header(regions=["1771"]),
        )
        inside = await programs_service.client.get(
            f"/v1/household-facts/{card}", params=PURPOSE, headers=auth_header(regions=["1701"])
        )
        assert (outside.status_code, unknown.status_code, inside.status_code) == (404, 404, 200)
        assert outside.json()["type"] == unknown.json()["type"]
        assert outside.json()["type"].endswith("/household-fact-not-found")
        assert len(await audited(programs_settings, card)) == 1, "only the read that happened"

    async def test_a_purpose_and_the_read_scope_are_required(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
        seed: str,
    ) -> None:
        card = stable_uuid(seed)
        await announced(programs_settings, household_event(card))
        path = f"/v1/household-facts/{card}"
        no_purpose = await programs_service.client.get(path, headers=auth_header())
        no_token = await programs_service.client.get(path, params=PURPOSE)
        enroller = await programs_service.client.get(
            path, params=PURPOSE, headers=auth_header(scopes=["programs:enrol"])
        )
        assert (no_purpose.status_code, no_token.status_code, enroller.status_code) == (
            422,
            401,
            403,
        )
        assert no_purpose.headers["content-type"] == "application/problem+json"
        assert await audited(programs_settings, card) == []


class TestReadPersonFact:
    async def test_the_card_relationship_and_disability_are_read(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
        seed: str,
    ) -> None:
        card, person_id = stable_uuid(f"{seed}/card"), stable_uuid(f"{seed}/person")
        await announced(
            programs_settings,
            household_event(card),
            person_event(person_id, household_id=card, relationship="spouse", disability="visual"),
        )
        response = await programs_service.client.get(
            f"/v1/person-facts/{person_id}", params=PURPOSE, headers=auth_header()
        )
        assert response.status_code == 200, response.text
        fact = response.json()
        assert (fact["household_id"], fact["relationship"], fact["disability"]) == (
            str(card),
            "spouse",
            "visual",
        )
