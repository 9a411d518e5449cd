"""Programs over HTTP: enrolment rules, auth, region, idempotency, the facts list."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from programs.settings import ProgramsSettings
from shared.testing import RunningService

from .factories import (
    BENGKULU_SELATAN_VILLAGE,
    KOTA_BENGKULU_VILLAGE,
    known_people,
    known_person,
)


class TestEnrolment:
    async def test_enrols_once_per_programme(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        person_id = await known_person(programs_settings)
        body = {"person_id": person_id, "programme": "SEKOLAH_RAKYAT"}
        first = await programs_service.client.post(
            "/v1/enrolments", json=body, headers=auth_header()
        )
        again = await programs_service.client.post(
            "/v1/enrolments", json=body, headers=auth_header()
        )
        other = await programs_service.client.post(
            "/v1/enrolments", json={**body, "programme": "PBI_JK"}, headers=auth_header()
        )
        assert (first.status_code, again.status_code, other.status_code) == (201, 409, 201)
        assert first.json()["region_code"] == KOTA_BENGKULU_VILLAGE

    async def test_idempotent_retry_returns_the_first_enrolment(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        person_id = await known_person(programs_settings)
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        body = {"person_id": person_id, "programme": "PKH"}
        first = await programs_service.client.post("/v1/enrolments", json=body, headers=headers)
        retry = await programs_service.client.post("/v1/enrolments", json=body, headers=headers)
        assert (first.status_code, retry.status_code) == (201, 201)
        assert first.json()["id"] == retry.json()["id"]

    async def test_scope_and_region_are_enforced(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        person_id = await known_person(programs_settings, BENGKULU_SELATAN_VILLAGE)
        body = {"person_id": person_id, "programme": "BLT"}
        no_token = await programs_service.client.post("/v1/enrolments", json=body)
        reader = await programs_service.client.post(
            "/v1/enrolments", json=body, headers=auth_header(scopes=["programs:read"])
        )
        outsider = await programs_service.client.post(
            "/v1/enrolments", json=body, headers=auth_header(regions=["1771"])
        )
        assert (no_token.status_code, reader.status_code, outsider.status_code) == (401, 403, 422)
        assert outsider.json()["type"].endswith("/person-not-known")

    async def test_enrolment_outside_region_reads_as_missing(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        person_id = await known_person(programs_settings, BENGKULU_SELATAN_VILLAGE)
        created = await programs_service.client.post(
            "/v1/enrolments",
            json={"person_id": person_id, "programme": "BPNT"},
            headers=auth_header(),
        )
        enrolment_id = created.json()["id"]
        outsider = await programs_service.client.get(
            f"/v1/enrolments/{enrolment_id}", headers=auth_header(regions=["1771"])
        )
        missing = await programs_service.client.get(
            f"/v1/enrolments/{uuid.uuid4()}", headers=auth_header(regions=["1771"])
        )
        assert outsider.status_code == missing.status_code == 404


class TestPersonFacts:
    async def test_pages_walk_every_visible_fact_once(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        village = "1771011003"
        created = {await known_person(programs_settings, village) for _ in range(7)}
        await known_person(programs_settings, BENGKULU_SELATAN_VILLAGE)
        seen: list[str] = []
        after: str | None = None
        while True:
            params = {
                "region": village,
                "limit": 3,
                "purpose": "programme monitoring",
                **({"after": after} if after else {}),
            }
            page = await programs_service.client.get(
                "/v1/person-facts", params=params, headers=auth_header(regions=["1771"])
            )
            assert page.status_code == 200
            seen += [item["person_id"] for item in page.json()["items"]]
            after = page.json()["next_cursor"]
            if after is None:
                break
        assert sorted(seen) == sorted(created)

    async def test_a_regional_operator_sees_only_their_region(
        self,
        programs_service: RunningService,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        # Facts in two regencies of province 17: Kota Bengkulu (1771) and Bengkulu Selatan (1701).
        inside = set(await known_people(programs_settings, 2, KOTA_BENGKULU_VILLAGE))
        inside.add(await known_person(programs_settings, "1771021002"))
        outside = set(await known_people(programs_settings, 2, BENGKULU_SELATAN_VILLAGE))
        # The operator of 1771 asks for the whole province: every page, not just the first.
        items: list[dict[str, str]] = []
        after: str | None = None
        while True:
            params = {
                "region": "17",
                "limit": 500,
                "purpose": "programme monitoring",
                **({"after": after} if after else {}),
            }
            page = await programs_service.client.get(
                "/v1/person-facts", params=params, headers=auth_header(regions=["1771"])
            )
            assert page.status_code == 200
            items += page.json()["items"]
            after = page.json()["next_cursor"]
            if after is None:
                break
        seen = {item["person_id"] for item in items}
        assert items, "the operator's own region returned nothing"
        assert inside <= seen, f"in-region facts missing: {inside - seen}"
        assert not outside & seen, f"out-of-region facts shown: {outside & seen}"
        assert [i for i in items if not i["village_code"].startswith("1771")] == []
        villages = {item["village_code"] for item in items if item["person_id"] in inside}
        assert villages == {KOTA_BENGKULU_VILLAGE, "1771021002"}
