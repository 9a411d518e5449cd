"""Enrolment under the catalogue's rules, over HTTP: who is admitted, the refusal that names the
failing clause, the decision kept with the enrolment, and one active enrolment per family card
for a household programme. The facts arrive as registry events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import httpx
import pytest

from programs.settings import ProgramsSettings
from shared.testing import RunningService, fetch

from .test_catalogue_api import _family

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


async def enrol(
    service: RunningService, person: uuid.UUID, programme: str, headers: dict[str, str]
) -> httpx.Response:
    return await service.client.post(
        "/v1/enrolments",
        json={"person_id": str(person), "programme": programme},
        headers=headers,
    )


class TestEnrolmentDecisions:
    @pytest.mark.parametrize("programme", ["MBG", "SEKOLAH_RAKYAT", "PBI_JK"])
    async def test_a_poor_child_is_enrolled_and_the_decision_is_kept(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
        programme: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1)
        response = await enrol(programs_service, child, programme, auth_header())
        assert response.status_code == 201, response.text
        enrolment = response.json()
        assert (enrolment["programme"], enrolment["unit"]) == (programme, "person")
        assert enrolment["rule_version"] >= 1
        assert enrolment["decision"]["passed"] is True
        assert {part["fact"] for part in enrolment["decision"]["parts"]} >= {"person.status"}

    async def test_a_dead_child_is_refused_naming_the_rule(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1, status="deceased")
        response = await enrol(programs_service, child, "SEKOLAH_RAKYAT", auth_header())
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/not-eligible")
        assert [e["message"] for e in problem["errors"]] == ["person.status is alive"]
        assert "SEKOLAH_RAKYAT rule version" in problem["detail"]
        assert (
            await fetch(programs_settings, "SELECT 1 FROM enrolment WHERE person_id = $1", child)
            == []
        )

    async def test_a_decile_ten_family_is_refused_pkh(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        head, _ = await _family(programs_settings, seed, decile=10)
        response = await enrol(programs_service, head, "PKH", auth_header())
        assert response.status_code == 422
        assert [e["message"] for e in response.json()["errors"]] == ["household.decile at most 4"]

    async def test_an_unfit_house_is_enrolled_in_rtlh_once_per_card(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        head, child = await _family(programs_settings, seed, decile=2)
        headers = auth_header()
        first = await enrol(programs_service, head, "RTLH", headers)
        assert first.status_code == 201, first.text
        assert first.json()["unit"] == "household"
        assert first.json()["household_id"] is not None
        # The same card through another member: the card is enrolled already.
        second = await enrol(programs_service, child, "RTLH", headers)
        assert second.status_code == 409, second.text
        assert "family card" in second.json()["detail"]

    async def test_two_members_racing_for_one_card_get_one_enrolment(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        head, child = await _family(programs_settings, seed, decile=1)
        answers = await asyncio.gather(
            *(
                enrol(programs_service, who, "BPNT", auth_header())
                for who in (head, child, head, child)
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 409, 409, 409]

    async def test_a_programme_the_catalogue_does_not_hold_is_a_422(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1)
        response = await enrol(programs_service, child, "BANSOS_FIKTIF", auth_header())
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-programme")
