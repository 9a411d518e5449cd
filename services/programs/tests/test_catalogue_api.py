"""The programme catalogue over HTTP: the seeded programmes, programmes and rule versions made by
API, and decisions explained clause by clause from facts that arrived as registry events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from programs.catalogue.seed import seed_rows
from programs.settings import ProgramsSettings
from shared.testing import RunningService, eventually, fetch, publish_events, stable_uuid

from .factories import BENGKULU_SELATAN_VILLAGE
from .registry_events import HOUSEHOLD_TOPIC, PERSON_TOPIC, handled, household_event, person_event

Headers = Callable[..., dict[str, str]]
PURPOSE = {"purpose": "Sekolah Rakyat intake check"}
ON = "2026-12-04"
ADMIN = ["programs:read", "programs:admin"]


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


def _code(seed: str) -> str:
    """A programme code of this test alone."""
    return "T" + stable_uuid(seed).hex[:12].upper()


def _programme(code: str, rule: dict[str, Any]) -> dict[str, Any]:
    return {
        "code": code,
        "name": "Asistensi Lanjut Usia",
        "agency": "Kemensos",
        "unit": "person",
        "benefit": {"kind": "cash", "amount": 250_000, "period": "month"},
        "source": "test",
        "rule": rule,
    }


async def _family(
    settings: ProgramsSettings, seed: str, *, decile: int | None, **child: Any
) -> tuple[uuid.UUID, uuid.UUID]:
    """A card of Kota Bengkulu with a head and a child, announced as the registry would."""
    card, head, pupil = (stable_uuid(f"{seed}/{who}") for who in ("card", "head", "child"))
    events = [
        household_event(card, decile=decile),
        person_event(head, household_id=card, birth_date="1985-02-01"),
        person_event(
            pupil,
            household_id=card,
            relationship="child",
            **{"birth_date": "2015-07-01", **child},
        ),
    ]
    await publish_events(settings, HOUSEHOLD_TOPIC, events[0])
    await publish_events(settings, PERSON_TOPIC, *events[1:])
    await eventually(lambda: handled(settings, *events), what="the family announced")
    return head, pupil


async def decide(
    service: RunningService, person: uuid.UUID, headers: dict[str, str], **body: Any
) -> httpx.Response:
    """Ask for a Sekolah Rakyat decision on ``person`` (``body`` adds or replaces fields)."""
    return await service.client.post(
        "/v1/programmes/SEKOLAH_RAKYAT/decisions",
        params=PURPOSE,
        json={"person_id": str(person), "on": ON, **body},
        headers=headers,
    )


class TestCatalogue:
    async def test_every_seeded_programme_is_listed_with_its_first_rule(
        self, programs_service: RunningService, auth_header: Headers
    ) -> None:
        response = await programs_service.client.get("/v1/programmes", headers=auth_header())
        assert response.status_code == 200, response.text
        listed = {p["code"]: p for p in response.json()["items"]}
        seeded = {row["code"] for row in seed_rows()}
        assert seeded <= listed.keys()
        assert seeded == {
            "PKH",
            "BPNT",
            "BLT",
            "PBI_JK",
            "SEKOLAH_RAKYAT",
            "MBG",
            "RTLH",
            "KOPDES_MERAH_PUTIH",
        }
        pbi = listed["PBI_JK"]
        assert (pbi["agency"], pbi["unit"]) == ("BPJS Kesehatan", "person")
        assert pbi["benefit"] == {
            "kind": "premium",
            "amount": 42_000,
            "period": "month",
            "description": pbi["benefit"]["description"],
        }
        assert "Perpres No. 64 Tahun 2020" in pbi["source"]
        assert listed["SEKOLAH_RAKYAT"]["rule"]["version"] >= 1
        assert "person.age between 6 and 18" in listed["SEKOLAH_RAKYAT"]["rule"]["text"]

    async def test_a_rule_change_is_a_new_version_and_the_old_one_stays(
        self, programs_service: RunningService, auth_header: Headers, seed: str
    ) -> None:
        code = _code(seed)
        client, admin = programs_service.client, auth_header(scopes=ADMIN)
        first = {"fact": "person.age", "at_least": 60}
        created = await client.post("/v1/programmes", json=_programme(code, first), headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["rule"]["version"] == 1
        second = {"all": [first, {"fact": "person.status", "is": "alive"}]}
        changed = await client.put(
            f"/v1/programmes/{code}/rule",
            json={"rule": second, "note": "Permensos: only the living"},
            headers=admin,
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["version"] == 2
        history = (await client.get(f"/v1/programmes/{code}/rules", headers=admin)).json()
        assert [(v["version"], v["rule"]) for v in history["versions"]] == [
            (1, first),
            (2, second),
        ]
        current = (await client.get(f"/v1/programmes/{code}", headers=admin)).json()
        assert current["rule"]["version"] == 2

    async def test_concurrent_rule_changes_get_distinct_versions(
        self, programs_service: RunningService, auth_header: Headers, seed: str
    ) -> None:
        code = _code(seed)
        client, admin = programs_service.client, auth_header(scopes=ADMIN)
        rule = {"fact": "person.age", "at_least": 60}
        await client.post("/v1/programmes", json=_programme(code, rule), headers=admin)
        changes = await asyncio.gather(
            *(
                client.put(
                    f"/v1/programmes/{code}/rule",
                    json={"rule": {"fact": "person.age", "at_least": 60 + i}, "note": f"take {i}"},
                    headers=admin,
                )
                for i in range(5)
            )
        )
        assert [c.status_code for c in changes] == [200] * 5, [c.text for c in changes]
        assert sorted(c.json()["version"] for c in changes) == [2, 3, 4, 5, 6]

    @pytest.mark.parametrize(
        ("rule", "field"),
        [
            ({"all": [{"fact": "person.wealth", "is": 1}]}, "body.rule.all[0].fact"),
            ({"fact": "household.decile", "at_most": 11}, "body.rule.at_most"),
        ],
    )
    async def test_an_unreadable_rule_is_a_422_that_says_where(
        self,
        programs_service: RunningService,
        auth_header: Headers,
        seed: str,
        rule: dict[str, Any],
        field: str,
    ) -> None:
        response = await programs_service.client.post(
            "/v1/programmes", json=_programme(_code(seed), rule), headers=auth_header(scopes=ADMIN)
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/invalid-rule")
        assert problem["errors"][0]["field"] == field

    async def test_changing_the_catalogue_needs_the_admin_scope(
        self, programs_service: RunningService, auth_header: Headers, seed: str
    ) -> None:
        response = await programs_service.client.post(
            "/v1/programmes",
            json=_programme(_code(seed), {"fact": "person.age", "at_least": 60}),
            headers=auth_header(scopes=["programs:read", "programs:enrol"]),
        )
        assert response.status_code == 403

    async def test_a_code_is_taken_once(
        self, programs_service: RunningService, auth_header: Headers
    ) -> None:
        response = await programs_service.client.post(
            "/v1/programmes",
            json=_programme("PKH", {"fact": "person.age", "at_least": 60}),
            headers=auth_header(scopes=ADMIN),
        )
        assert response.status_code == 409
        assert response.json()["type"].endswith("/programme-exists")


class TestDecisions:
    async def test_a_poor_child_is_eligible_for_sekolah_rakyat_clause_by_clause(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1)
        response = await decide(programs_service, child, auth_header(regions=["1771"]))
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["eligible"] is True
        assert decision["failed"] == []
        assert [(p["fact"], p["value"], p["passed"]) for p in decision["explanation"]["parts"]] == [
            ("person.status", "alive", True),
            ("person.age", 11, True),
            ("household.decile", 1, True),
        ]
        audit = await fetch(
            programs_settings,
            "SELECT purpose, action FROM audit_log WHERE resource_id = $1",
            str(child),
        )
        assert [(r["purpose"], r["action"]) for r in audit] == [
            ("Sekolah Rakyat intake check", "decide")
        ]

    async def test_a_dead_child_is_refused_naming_the_status_clause(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1, status="deceased")
        decision = (await decide(programs_service, child, auth_header())).json()
        assert decision["eligible"] is False
        assert decision["failed"] == ["person.status is alive"]

    @pytest.mark.parametrize(("decile", "eligible"), [(2, True), (3, False), (None, False)])
    async def test_decile_ceiling_and_an_unranked_card(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
        decile: int | None,
        eligible: bool,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=decile)
        decision = (await decide(programs_service, child, auth_header())).json()
        assert decision["eligible"] is eligible
        assert decision["failed"] == ([] if eligible else ["household.decile at most 2"])

    async def test_a_person_outside_the_callers_region_is_not_found(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, seed, decile=1)
        response = await decide(programs_service, child, auth_header(regions=["1701"]))
        assert response.status_code == 404

    async def test_a_decision_needs_a_purpose(
        self, programs_service: RunningService, auth_header: Headers
    ) -> None:
        response = await programs_service.client.post(
            "/v1/programmes/SEKOLAH_RAKYAT/decisions",
            json={"person_id": str(uuid.uuid4())},
            headers=auth_header(),
        )
        assert response.status_code == 422

    async def test_the_eligible_list_is_the_decisions_set_based_and_region_walled(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Headers,
        seed: str,
    ) -> None:
        _, child = await _family(programs_settings, f"{seed}/in", decile=1)
        _, too_rich = await _family(programs_settings, f"{seed}/rich", decile=6)
        _, elsewhere = await _family(
            programs_settings, f"{seed}/out", decile=1, village_code=BENGKULU_SELATAN_VILLAGE
        )
        eligible: list[str] = []
        after: str | None = None
        while True:
            page = await programs_service.client.get(
                "/v1/programmes/SEKOLAH_RAKYAT/eligible",
                params={**PURPOSE, "on": ON, "limit": 2, **({"after": after} if after else {})},
                headers=auth_header(regions=["1771"]),
            )
            assert page.status_code == 200, page.text
            eligible += page.json()["person_ids"]
            if (after := page.json()["next_cursor"]) is None:
                break
        assert str(child) in eligible
        assert str(too_rich) not in eligible
        assert str(elsewhere) not in eligible  # outside the 1771 token's region
        assert len(eligible) == len(set(eligible))
