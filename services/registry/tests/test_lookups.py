"""Lookups over HTTP: scope projection, region restriction, audit, batch, search, pagination."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import asyncpg
import pytest

from registry.projection import (
    HOUSEHOLD_FIELDS,
    IDENTITY,
    PERSON_FIELDS,
    READ,
    SOCIOECONOMIC,
    HouseholdView,
    PersonView,
)
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch, sequence_number, without_instance

from .factories import (
    DISTRICT,
    OTHER_REGENCY_VILLAGE,
    VILLAGE,
    make_nik,
    person_body,
    some_date,
    unique_serial,
)

Headers = Callable[..., dict[str, str]]

BASIC_FIELDS = {
    "id",
    "household_id",
    "village_code",
    "sex",
    "birth_year",
    "status",
    "relationship",
    "disability",
    "version",
}
IDENTITY_FIELDS = {"nik", "full_name", "birth_date", "death_date", "kk", "address"}
SOCIOECONOMIC_FIELDS = {
    "decile",
    "floor",
    "wall",
    "roof",
    "water",
    "sanitation",
    "electricity",
    "house_fit",
    "education",
    "occupation",
}
HOUSEHOLD_LEVEL = {"kk", "address"} | (SOCIOECONOMIC_FIELDS - {"education", "occupation"})
PURPOSE = {"purpose": "PBI-JK eligibility check"}
ALL_READ = [READ, IDENTITY, SOCIOECONOMIC]


def unknown_nik() -> str:
    """A well-formed NIK nobody registered (serial 0000 is never issued)."""
    return make_nik(birth_date=date(1960, 1, 1), sex="M", serial=0)


def unknown_niks(count: int) -> list[str]:
    """``count`` distinct well-formed NIKs nobody registered."""
    return [
        make_nik(birth_date=date(1960 + i // 336, i // 28 % 12 + 1, i % 28 + 1), sex="M", serial=0)
        for i in range(count)
    ]


def make_kk(village: str = VILLAGE) -> str:
    """A fresh KK number of the village's district (district + DDMMYY + serial)."""
    issued = some_date(sequence_number(), first=date(2010, 1, 1), days=5000)
    return f"{village[:6]}{issued:%d%m%y}{unique_serial():04d}"


async def insert_household(
    settings: RegistrySettings, *, village: str = VILLAGE, decile: int | None = 2
) -> tuple[str, str]:
    """A household written straight into the database: (id, kk)."""
    household_id, kk = str(uuid.uuid4()), make_kk(village)
    await fetch(
        settings,
        "INSERT INTO household (id, kk, village_code, address, decile, floor, wall, roof,"
        " water, sanitation, electricity, house_fit)"
        " VALUES ($1, $2, $3, 'Jl. Merapi No. 12', $4, 'earth', 'bamboo', 'thatch',"
        " 'unprotected', 'none', 'pln_450', false)",
        uuid.UUID(household_id),
        kk,
        village,
        decile,
    )
    return household_id, kk


async def register(service: RunningService, auth_header: Headers, **fields: Any) -> dict[str, Any]:
    """A person registered through POST /v1/persons; returns the body that was sent + its id."""
    body = person_body(**fields)
    response = await service.client.post("/v1/persons", json=body, headers=auth_header())
    assert response.status_code == 201, response.text
    return {**body, "id": response.json()["id"]}


async def audit_rows(settings: RegistrySettings, *resource_ids: str) -> list[asyncpg.Record]:
    return await fetch(
        settings,
        "SELECT agency, subject, purpose, action, resource_type, resource_id, occurred_at,"
        " trace_id FROM audit_log WHERE resource_id = ANY($1::text[]) ORDER BY id",
        list(resource_ids),
    )


async def search_all(
    service: RunningService, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Walk every page of a search."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(100):
        query = {**PURPOSE, **params, **({"after": after} if after else {})}
        response = await service.client.get("/v1/persons", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        after = page["next_cursor"]
        if after is None:
            return items
    raise AssertionError("pagination did not end")


class TestProjectionTable:
    def test_response_models_list_exactly_the_projected_fields(self) -> None:
        assert set(PersonView.model_fields) == {spec.name for spec in PERSON_FIELDS}
        assert set(HouseholdView.model_fields) == {spec.name for spec in HOUSEHOLD_FIELDS} | {
            "members"
        }
        assert {spec.name for spec in PERSON_FIELDS if spec.scope == READ} == BASIC_FIELDS
        assert {spec.name for spec in PERSON_FIELDS if spec.scope == IDENTITY} == IDENTITY_FIELDS
        assert {
            spec.name for spec in PERSON_FIELDS if spec.scope == SOCIOECONOMIC
        } == SOCIOECONOMIC_FIELDS

    async def test_openapi_documents_every_field_as_optional_with_its_scope(
        self, registry_service: RunningService
    ) -> None:
        schema = (await registry_service.client.get("/openapi.json")).json()
        person = schema["components"]["schemas"]["PersonView"]
        assert "required" not in person
        for spec in PERSON_FIELDS:
            assert f"`{spec.scope}`" in person["properties"][spec.name]["description"]
        by_nik = schema["paths"]["/v1/persons/by-nik/{nik}"]["get"]["responses"]
        assert by_nik["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/PersonView"
        )


class TestScopeProjection:
    @pytest.mark.parametrize(
        ("scopes", "expected"),
        [
            ([READ], BASIC_FIELDS),
            ([READ, IDENTITY], BASIC_FIELDS | IDENTITY_FIELDS),
            ([READ, SOCIOECONOMIC], BASIC_FIELDS | SOCIOECONOMIC_FIELDS),
            (ALL_READ, BASIC_FIELDS | IDENTITY_FIELDS | SOCIOECONOMIC_FIELDS),
        ],
    )
    async def test_fields_by_nik_are_the_union_of_the_scopes(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
        scopes: list[str],
        expected: set[str],
    ) -> None:
        household_id, kk = await insert_household(registry_settings, decile=3)
        person = await register(
            registry_service,
            auth_header,
            birth_date=date(1990, 9, 5),
            sex="F",
            full_name="Siti Aminah",
            household_id=household_id,
            relationship="head",
        )
        response = await registry_service.client.get(
            f"/v1/persons/by-nik/{person['nik']}",
            params=PURPOSE,
            headers=auth_header(scopes=scopes),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == expected
        assert body["id"] == person["id"]
        assert body["birth_year"] == 1990
        assert body["household_id"] == household_id
        if IDENTITY in scopes:
            assert (body["nik"], body["full_name"], body["kk"]) == (
                person["nik"],
                "Siti Aminah",
                kk,
            )
            assert body["birth_date"] == "1990-09-05"
        if SOCIOECONOMIC in scopes:
            assert (body["decile"], body["floor"], body["house_fit"]) == (3, "earth", False)

    async def test_read_by_id_is_projected_too(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        person = await register(registry_service, auth_header)
        basic = await registry_service.client.get(
            f"/v1/persons/{person['id']}", params=PURPOSE, headers=auth_header(scopes=[READ])
        )
        identity = await registry_service.client.get(
            f"/v1/persons/{person['id']}",
            params=PURPOSE,
            headers=auth_header(scopes=[READ, IDENTITY]),
        )
        assert (basic.status_code, identity.status_code) == (200, 200)
        assert set(basic.json()) == BASIC_FIELDS
        assert not {"nik", "full_name"} & set(basic.json())
        assert set(identity.json()) == BASIC_FIELDS | IDENTITY_FIELDS
        assert identity.json()["nik"] == person["nik"]

    async def test_a_person_without_household_has_null_household_fields(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        person = await register(registry_service, auth_header)
        body = (
            await registry_service.client.get(
                f"/v1/persons/by-nik/{person['nik']}",
                params=PURPOSE,
                headers=auth_header(scopes=ALL_READ),
            )
        ).json()
        assert body["household_id"] is None
        assert {field: body[field] for field in HOUSEHOLD_LEVEL} == dict.fromkeys(HOUSEHOLD_LEVEL)

    @pytest.mark.parametrize(
        ("scopes", "household", "member"),
        [
            ([READ], {"id", "village_code", "status", "version", "members"}, BASIC_FIELDS),
            (
                ALL_READ,
                {"id", "village_code", "status", "version", "members"} | HOUSEHOLD_LEVEL,
                BASIC_FIELDS | ((IDENTITY_FIELDS | SOCIOECONOMIC_FIELDS) - HOUSEHOLD_LEVEL),
            ),
        ],
    )
    async def test_household_by_kk_projects_household_and_members(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
        scopes: list[str],
        household: set[str],
        member: set[str],
    ) -> None:
        household_id, kk = await insert_household(registry_settings)
        child = await register(
            registry_service, auth_header, household_id=household_id, relationship="child"
        )
        head = await register(
            registry_service, auth_header, household_id=household_id, relationship="head"
        )
        response = await registry_service.client.get(
            f"/v1/households/by-kk/{kk}", params=PURPOSE, headers=auth_header(scopes=scopes)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == household
        assert body["id"] == household_id
        assert [m["id"] for m in body["members"]] == [head["id"], child["id"]]  # head first
        assert all(set(m) == member for m in body["members"])


class TestRegionRestriction:
    """A Kota Bengkulu (1771) operator and a person of Kab. Bengkulu Selatan (1701)."""

    @pytest.fixture
    def operator(self, auth_header: Headers) -> dict[str, str]:
        return auth_header(agency="DINSOS-1771", scopes=ALL_READ, regions=["1771"])

    @pytest.fixture
    async def outsider(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> dict[str, Any]:
        household_id, kk = await insert_household(registry_settings, village=OTHER_REGENCY_VILLAGE)
        person = await register(
            registry_service,
            auth_header,
            village_code=OTHER_REGENCY_VILLAGE,
            household_id=household_id,
            relationship="head",
            full_name=f"Orang Luar {uuid.uuid4().hex[:8]}",
        )
        return {**person, "kk": kk}

    async def test_by_id_reads_like_unknown(
        self,
        registry_service: RunningService,
        operator: dict[str, str],
        outsider: dict[str, Any],
    ) -> None:
        outside = await registry_service.client.get(
            f"/v1/persons/{outsider['id']}", params=PURPOSE, headers=operator
        )
        unknown = await registry_service.client.get(
            f"/v1/persons/{uuid.uuid4()}", params=PURPOSE, headers=operator
        )
        assert outside.status_code == unknown.status_code == 404
        assert without_instance(outside.json()) == without_instance(unknown.json())

    async def test_by_nik_reads_like_unknown(
        self,
        registry_service: RunningService,
        operator: dict[str, str],
        outsider: dict[str, Any],
    ) -> None:
        outside = await registry_service.client.get(
            f"/v1/persons/by-nik/{outsider['nik']}", params=PURPOSE, headers=operator
        )
        unknown = await registry_service.client.get(
            f"/v1/persons/by-nik/{unknown_nik()}", params=PURPOSE, headers=operator
        )
        assert outside.status_code == unknown.status_code == 404
        assert outside.headers["content-type"] == unknown.headers["content-type"]
        assert without_instance(outside.json()) == without_instance(unknown.json())

    async def test_by_kk_reads_like_unknown(
        self,
        registry_service: RunningService,
        operator: dict[str, str],
        outsider: dict[str, Any],
    ) -> None:
        outside = await registry_service.client.get(
            f"/v1/households/by-kk/{outsider['kk']}", params=PURPOSE, headers=operator
        )
        unknown = await registry_service.client.get(
            "/v1/households/by-kk/1771010101000000", params=PURPOSE, headers=operator
        )
        assert outside.status_code == unknown.status_code == 404
        assert without_instance(outside.json()) == without_instance(unknown.json())

    async def test_batch_answers_not_found(
        self,
        registry_service: RunningService,
        operator: dict[str, str],
        outsider: dict[str, Any],
    ) -> None:
        missing = unknown_nik()
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": [outsider["nik"], missing], "purpose": "verification"},
            headers=operator,
        )
        assert response.status_code == 200
        results = response.json()["results"]
        assert results == [
            {"nik": outsider["nik"], "status": "not_found", "person": None},
            {"nik": missing, "status": "not_found", "person": None},
        ]

    async def test_search_never_returns_them(
        self,
        registry_service: RunningService,
        operator: dict[str, str],
        outsider: dict[str, Any],
        auth_header: Headers,
    ) -> None:
        by_region = await registry_service.client.get(
            "/v1/persons", params={**PURPOSE, "region": "1701"}, headers=operator
        )
        assert by_region.status_code == 200
        assert by_region.json() == {"items": [], "next_cursor": None}
        by_name = await search_all(registry_service, operator, name=outsider["full_name"])
        assert outsider["id"] not in [item["id"] for item in by_name]
        national = await search_all(
            registry_service, auth_header(scopes=ALL_READ), name=outsider["full_name"]
        )
        assert outsider["id"] in [item["id"] for item in national]

    async def test_refused_reads_leave_no_audit_rows(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        operator: dict[str, str],
        outsider: dict[str, Any],
    ) -> None:
        await registry_service.client.get(
            f"/v1/persons/by-nik/{outsider['nik']}", params=PURPOSE, headers=operator
        )
        await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": [outsider["nik"]], "purpose": "verification"},
            headers=operator,
        )
        assert await audit_rows(registry_settings, outsider["id"]) == []

    async def test_household_members_outside_the_region_never_appear(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
        operator: dict[str, str],
    ) -> None:
        household_id, kk = await insert_household(registry_settings)
        head = await register(
            registry_service, auth_header, household_id=household_id, relationship="head"
        )
        away = await register(
            registry_service, auth_header, household_id=household_id, relationship="child"
        )
        # Still on the card, but living in Bengkulu Selatan now.
        await fetch(
            registry_settings,
            "UPDATE person SET village_code = $1 WHERE id = $2",
            OTHER_REGENCY_VILLAGE,
            uuid.UUID(away["id"]),
        )
        response = await registry_service.client.get(
            f"/v1/households/by-kk/{kk}", params=PURPOSE, headers=operator
        )
        assert response.status_code == 200
        assert [m["id"] for m in response.json()["members"]] == [head["id"]]
        assert await audit_rows(registry_settings, away["id"]) == []


class TestAudit:
    async def test_by_nik_is_audited_with_purpose(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        person = await register(registry_service, auth_header)
        response = await registry_service.client.get(
            f"/v1/persons/by-nik/{person['nik']}",
            params={"purpose": "BGN school meal roster"},
            headers=auth_header(agency="BGN", subject="gizi-01", scopes=[READ]),
        )
        assert response.status_code == 200
        rows = await audit_rows(registry_settings, person["id"])
        assert [tuple(r)[:6] for r in rows] == [
            ("BGN", "gizi-01", "BGN school meal roster", "read", "person", person["id"])
        ]

    async def test_by_kk_audits_household_and_each_member(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        household_id, kk = await insert_household(registry_settings)
        members = [
            await register(
                registry_service, auth_header, household_id=household_id, relationship=relation
            )
            for relation in ("head", "spouse")
        ]
        await registry_service.client.get(
            f"/v1/households/by-kk/{kk}",
            params={"purpose": "RTLH survey"},
            headers=auth_header(agency="PUPR", scopes=[READ]),
        )
        ids = [household_id, *(m["id"] for m in members)]
        rows = await audit_rows(registry_settings, *ids)
        assert sorted((r["resource_type"], r["resource_id"]) for r in rows) == sorted(
            [("household", household_id)] + [("person", m["id"]) for m in members]
        )
        assert {(r["agency"], r["purpose"]) for r in rows} == {("PUPR", "RTLH survey")}

    async def test_batch_audits_every_found_person_in_one_statement(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        people = [await register(registry_service, auth_header) for _ in range(3)]
        niks = [p["nik"] for p in people] + [unknown_nik()]
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": niks, "purpose": "PBI-JK January list"},
            headers=auth_header(agency="BPJS", scopes=[READ]),
        )
        assert response.status_code == 200
        rows = await audit_rows(registry_settings, *(p["id"] for p in people))
        assert sorted(r["resource_id"] for r in rows) == sorted(p["id"] for p in people)
        assert {(r["agency"], r["purpose"]) for r in rows} == {("BPJS", "PBI-JK January list")}
        # One statement, one transaction: the rows share their timestamp and trace.
        assert len({(r["occurred_at"], r["trace_id"]) for r in rows}) == 1

    async def test_search_audits_every_returned_person(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        name = f"Audit Cari {uuid.uuid4().hex[:10]}"
        people = [await register(registry_service, auth_header, full_name=name) for _ in range(3)]
        response = await registry_service.client.get(
            "/v1/persons",
            params={"purpose": "facilitator visit plan", "name": name, "limit": 2},
            headers=auth_header(agency="KEMENSOS", scopes=[READ, IDENTITY]),
        )
        returned = [item["id"] for item in response.json()["items"]]
        assert len(returned) == 2
        rows = await audit_rows(registry_settings, *(p["id"] for p in people))
        # The page's two people, not the third one the cursor points past.
        assert sorted(r["resource_id"] for r in rows) == sorted(returned)
        assert {r["purpose"] for r in rows} == {"facilitator visit plan"}


class TestBatchLookup:
    async def test_found_and_not_found_in_asked_order_duplicates_once(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        first, second = [await register(registry_service, auth_header) for _ in range(2)]
        missing = unknown_nik()
        niks = [second["nik"], missing, first["nik"], second["nik"]]
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": niks, "purpose": "verification"},
            headers=auth_header(scopes=[READ]),
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [(r["nik"], r["status"]) for r in body["results"]] == [
            (second["nik"], "found"),
            (missing, "not_found"),
            (first["nik"], "found"),
        ]
        assert (body["found"], body["not_found"]) == (2, 1)
        assert body["results"][0]["person"]["id"] == second["id"]
        assert set(body["results"][0]["person"]) == BASIC_FIELDS
        assert body["results"][1]["person"] is None

    async def test_a_thousand_niks_in_one_call(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        person = await register(registry_service, auth_header)
        niks = [person["nik"], *unknown_niks(999)]
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": niks, "purpose": "verification"},
            headers=auth_header(scopes=[READ]),
        )
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == 1000

    async def test_more_than_a_thousand_is_422(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        niks = unknown_niks(1001)
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": niks, "purpose": "verification"},
            headers=auth_header(scopes=[READ]),
        )
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["body.niks"]

    async def test_bad_items_are_named_by_index(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        niks = [unknown_nik(), "12345", unknown_nik(), "17710141099000O1"]
        response = await registry_service.client.post(
            "/v1/persons/lookup",
            json={"niks": niks, "purpose": "verification"},
            headers=auth_header(scopes=[READ]),
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in response.json()["errors"]] == ["body.niks.1", "body.niks.3"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"niks": []}, "body.niks"),
            ({"niks": "1771014509900001"}, "body.niks"),
            ({"niks": [1771014509900001]}, "body.niks.0"),
            ({"niks": None}, "body.niks"),
            ({"purpose": "x"}, "body.purpose"),
            ({"colour": "red"}, "body.colour"),
        ],
    )
    async def test_bad_bodies_are_named(
        self,
        registry_service: RunningService,
        auth_header: Headers,
        body: dict[str, Any],
        field: str,
    ) -> None:
        full = {"niks": [unknown_nik()], "purpose": "verification", **body}
        response = await registry_service.client.post(
            "/v1/persons/lookup", json=full, headers=auth_header(scopes=[READ])
        )
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]


class TestSearch:
    async def test_name_search_forgives_a_typo(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        siti = await register(registry_service, auth_header, full_name="Siti Aminah")
        budi = await register(registry_service, auth_header, full_name="Budi Santoso")
        fatimah = await register(registry_service, auth_header, full_name="Siti Fatimah")
        found = await search_all(
            registry_service,
            auth_header(scopes=[READ, IDENTITY]),
            name="Siti Aminh",
            region=DISTRICT,
            limit=200,
        )
        ids = [item["id"] for item in found]
        assert siti["id"] in ids
        assert budi["id"] not in ids
        assert fatimah["id"] not in ids  # only "Siti" in common: not a typo of the name
        assert {item["full_name"] for item in found} >= {"Siti Aminah"}

    async def test_keyset_pagination_walks_every_result_exactly_once(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        name = f"Halaman Uji {uuid.uuid4().hex[:10]}"
        people = [await register(registry_service, auth_header, full_name=name) for _ in range(7)]
        headers = auth_header(scopes=[READ, IDENTITY])
        pages = []
        after = None
        while True:
            params = {**PURPOSE, "name": name, "limit": 3, **({"after": after} if after else {})}
            page = (
                await registry_service.client.get("/v1/persons", params=params, headers=headers)
            ).json()
            pages.append([item["id"] for item in page["items"]])
            after = page["next_cursor"]
            if after is None:
                break
        assert [len(page) for page in pages] == [3, 3, 1]
        walked = [person_id for page in pages for person_id in page]
        assert walked == sorted(walked)
        assert sorted(walked) == sorted(p["id"] for p in people)

    async def test_filters_by_region_status_and_decile(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        name = f"Saring Desil {uuid.uuid4().hex[:10]}"
        poor_id, _ = await insert_household(registry_settings, decile=1)
        rich_id, _ = await insert_household(registry_settings, decile=9)
        poor = await register(
            registry_service, auth_header, full_name=name, household_id=poor_id, relationship="head"
        )
        rich = await register(
            registry_service, auth_header, full_name=name, household_id=rich_id, relationship="head"
        )
        headers = auth_header(scopes=ALL_READ)

        async def ids(**params: Any) -> set[str]:
            return {item["id"] for item in await search_all(registry_service, headers, **params)}

        assert await ids(name=name) == {poor["id"], rich["id"]}
        assert await ids(name=name, decile_max=2) == {poor["id"]}
        assert await ids(name=name, decile_min=5, decile_max=10) == {rich["id"]}
        assert await ids(name=name, region=VILLAGE, status="alive") == {poor["id"], rich["id"]}
        assert await ids(name=name, status="deceased") == set()
        assert await ids(name=name, region="1701") == set()

    @pytest.mark.parametrize(
        ("params", "scopes", "field"),
        [
            ({"name": "Siti Aminah"}, [READ, SOCIOECONOMIC], "query.name"),
            ({"decile_max": 2}, [READ, IDENTITY], "query.decile_max"),
        ],
    )
    async def test_filters_need_the_scope_of_their_field(
        self,
        registry_service: RunningService,
        auth_header: Headers,
        params: dict[str, Any],
        scopes: list[str],
        field: str,
    ) -> None:
        response = await registry_service.client.get(
            "/v1/persons", params={**PURPOSE, **params}, headers=auth_header(scopes=scopes)
        )
        assert response.status_code == 403
        assert response.json()["field"] == field

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"region": "177"}, "query.region"),
            ({"region": "17710110011"}, "query.region"),
            ({"decile_min": 0}, "query.decile_min"),
            ({"decile_min": 5, "decile_max": 4}, "query.decile_min"),
            ({"status": "asleep"}, "query.status"),
            ({"limit": 0}, "query.limit"),
            ({"limit": 201}, "query.limit"),
            ({"after": "not-a-cursor"}, "query.after"),
            ({"name": "Si"}, "query.name"),
        ],
    )
    async def test_bad_parameters_are_named(
        self,
        registry_service: RunningService,
        auth_header: Headers,
        params: dict[str, Any],
        field: str,
    ) -> None:
        response = await registry_service.client.get(
            "/v1/persons", params={**PURPOSE, **params}, headers=auth_header(scopes=ALL_READ)
        )
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]


class TestPurposeAndScope:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/persons/by-nik/1771014509900001",
            "/v1/households/by-kk/1771010101200001",
            "/v1/persons",
            f"/v1/persons/{uuid.UUID(int=1)}",
        ],
    )
    async def test_purpose_is_required(
        self, registry_service: RunningService, auth_header: Headers, path: str
    ) -> None:
        response = await registry_service.client.get(path, headers=auth_header(scopes=[READ]))
        assert response.status_code == 422
        assert "query.purpose" in [e["field"] for e in response.json()["errors"]]

    async def test_batch_purpose_is_required(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons/lookup", json={"niks": [unknown_nik()]}, headers=auth_header(scopes=[READ])
        )
        assert response.status_code == 422
        assert "body.purpose" in [e["field"] for e in response.json()["errors"]]

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "/v1/persons/by-nik/1771014509900001"),
            ("GET", "/v1/households/by-kk/1771010101200001"),
            ("GET", "/v1/persons"),
            ("POST", "/v1/persons/lookup"),
        ],
    )
    async def test_lookups_need_registry_read(
        self, registry_service: RunningService, auth_header: Headers, method: str, path: str
    ) -> None:
        response = await registry_service.client.request(
            method,
            path,
            params=PURPOSE,
            json={"niks": [unknown_nik()], "purpose": "verification"},
            headers=auth_header(scopes=[IDENTITY, SOCIOECONOMIC]),
        )
        assert response.status_code == 403
        assert READ in response.json()["detail"]

    @pytest.mark.parametrize(
        "path", ["/v1/persons/by-nik/177101450990000", "/v1/households/by-kk/17710101012000x1"]
    )
    async def test_malformed_keys_are_422(
        self, registry_service: RunningService, auth_header: Headers, path: str
    ) -> None:
        response = await registry_service.client.get(
            path, params=PURPOSE, headers=auth_header(scopes=[READ])
        )
        assert response.status_code == 422
