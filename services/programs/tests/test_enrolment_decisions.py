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
from shared.testing import RunningService, eventually, fetch, publish_events

from .factories import BENGKULU_SELATAN_VILLAGE
from .registry_events import PERSON_TOPIC, handled, person_event
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


class TestDeath:
    async def test_a_death_delivered_twice_ends_the_persons_enrolments_exactly_once(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        head, child = await _family(programs_settings, seed, decile=1)
        headers = auth_header()
        mine = [
            (await enrol(programs_service, child, programme, headers)).json()["id"]
            for programme in ("SEKOLAH_RAKYAT", "MBG")
        ]
        family = (await enrol(programs_service, head, "PKH", headers)).json()["id"]
        card = (
            await fetch(
                programs_settings,
                "SELECT household_id FROM person_fact WHERE person_id = $1",
                child,
            )
        )[0]["household_id"]
        died = [
            person_event(
                child,
                household_id=card,
                type="registry.person.died.v1",
                version=2,
                relationship="child",
                birth_date="2015-07-01",
                status="deceased",
                death_date="2026-11-18",
                source="dukcapil",
            )
            for _ in range(2)
        ]
        # Two death events of the same person, and the first one delivered a second time.
        await publish_events(programs_settings, PERSON_TOPIC, died[0], died[1], died[0])
        await eventually(lambda: handled(programs_settings, *died), what="both deaths handled")

        statuses = await fetch(
            programs_settings,
            "SELECT id::text, status FROM enrolment WHERE id = ANY($1::uuid[])",
            [*mine, family],
        )
        assert {r["id"]: r["status"] for r in statuses} == {
            mine[0]: "terminated",
            mine[1]: "terminated",
            family: "active",  # the head's PKH goes on (re-evaluating the card comes later)
        }
        ended = await fetch(
            programs_settings,
            "SELECT key, count(*) AS n FROM outbox_event "
            "WHERE event_type = 'programs.enrolment.terminated.v1' AND key = ANY($1::text[]) "
            "GROUP BY key",
            mine,
        )
        assert {r["key"]: r["n"] for r in ended} == {mine[0]: 1, mine[1]: 1}
        history = (
            await programs_service.client.get(f"/v1/enrolments/{mine[0]}/history", headers=headers)
        ).json()
        steps = [(t["from_status"], t["to_status"]) for t in history["transitions"]]
        assert steps == [(None, "active"), ("active", "terminated")]
        assert history["transitions"][1]["actor"] == f"registry:{died[0].id}"
        assert "the person died on 2026-11-18" in history["transitions"][1]["reason"]

    async def test_a_dead_persons_enrolment_cannot_be_made_again(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1, status="deceased")
        response = await enrol(programs_service, child, "MBG", auth_header())
        assert response.status_code == 422
        assert response.json()["type"].endswith("/not-eligible")


class TestLists:
    async def test_is_this_person_enrolled_is_one_call(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        head, child = await _family(programs_settings, seed, decile=1)
        headers = auth_header()
        await enrol(programs_service, child, "PBI_JK", headers)
        await enrol(programs_service, head, "PKH", headers)

        async def enrolled(**filters: str) -> list[str]:
            page = await programs_service.client.get(
                "/v1/enrolments", params=filters, headers=headers
            )
            assert page.status_code == 200, page.text
            return [e["programme"] for e in page.json()["items"]]

        assert await enrolled(person_id=str(child), programme="PBI_JK", status="active") == [
            "PBI_JK"
        ]
        assert await enrolled(person_id=str(child), programme="MBG") == []
        card = (await enrol(programs_service, head, "RTLH", headers)).json()["household_id"]
        # By card: the card's own enrolments and its members' (the child's PBI-JK).
        assert sorted(await enrolled(household_id=card, status="active")) == [
            "PBI_JK",
            "PKH",
            "RTLH",
        ]

    async def test_pages_stay_inside_the_callers_region_and_never_repeat(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        children = []
        for n in range(3):
            _, child = await _family(programs_settings, f"{seed}/{n}", decile=1)
            children.append(str(child))
            await enrol(programs_service, child, "MBG", auth_header())
        _, away = await _family(
            programs_settings, f"{seed}/away", decile=1, village_code=BENGKULU_SELATAN_VILLAGE
        )
        await enrol(programs_service, away, "MBG", auth_header())
        seen: list[str] = []
        after: str | None = None
        while True:
            params = {"programme": "MBG", "limit": "2", **({"after": after} if after else {})}
            page = (
                await programs_service.client.get(
                    "/v1/enrolments", params=params, headers=auth_header(regions=["1771"])
                )
            ).json()
            seen += [e["person_id"] for e in page["items"]]
            assert all(e["region_code"].startswith("1771") for e in page["items"])
            if (after := page["next_cursor"]) is None:
                break
        assert set(children) <= set(seen)
        assert str(away) not in seen
        assert len(seen) == len(set(seen))
