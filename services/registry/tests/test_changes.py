"""Changes as events, through HTTP: each change lands in the outbox with its key and payload,
bumps the row version once, and a change that changes nothing does neither."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, get_args

import pytest

from registry import fields, models
from registry.nik import kk_problems
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch, sequence_number

from .factories import OTHER_REGENCY_VILLAGE, VILLAGE, person_body, some_date, unique_serial

Headers = Callable[..., dict[str, str]]
NEIGHBOUR_VILLAGE = "1771011002"  # Sukarami, also in Selebar (Kota Bengkulu)
IDENTITY = "registry:read:identity"
WRITE_READ = ["registry:read", "registry:write"]


def make_kk(*, district: str = VILLAGE[:6], serial: int | None = None) -> str:
    issued = some_date(sequence_number(), first=date(2000, 1, 1), days=9000)
    return f"{district}{issued:%d%m%y}{serial if serial is not None else unique_serial():04d}"


def household_body(**overrides: Any) -> dict[str, Any]:
    village = overrides.get("village_code", VILLAGE)
    return {
        "kk": make_kk(district=str(village)[:6]),
        "village_code": village,
        "address": "Jl. Merapi No. 12, RT 003 RW 001",
        "decile": 2,
        "floor": "cement",
        "roof": "zinc",
        **overrides,
    }


async def events(settings: RegistrySettings, key: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, type, data) of every event staged under ``key``, in order."""
    rows = await fetch(
        settings,
        "SELECT topic, event_type, envelope->'data' AS data FROM outbox_event "
        "WHERE key = $1 ORDER BY id",
        key,
    )
    return [(r["topic"], r["event_type"], json.loads(r["data"])) for r in rows]


async def types(settings: RegistrySettings, key: str) -> list[str]:
    return [event_type for _, event_type, _ in await events(settings, key)]


class Registry:
    """The HTTP calls the tests make, with a national clerk's token unless told otherwise."""

    def __init__(self, service: RunningService, auth_header: Headers) -> None:
        self.client = service.client
        self.headers = auth_header(scopes=WRITE_READ)

    async def household(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/households", json=household_body(**overrides), headers=self.headers
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def person(self, **overrides: Any) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/persons", json=person_body(**overrides), headers=self.headers
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def family(self, size: int = 4) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """A household with a head, a spouse and children (living members, head first)."""
        household = await self.household()
        roles = ["head", "spouse", *["child"] * (size - 2)]
        members = [
            await self.person(household_id=household["id"], relationship=role) for role in roles
        ]
        return household, members


@pytest.fixture
def registry(registry_service: RunningService, auth_header: Headers) -> Registry:
    return Registry(registry_service, auth_header)


# --- KK validation --------------------------------------------------------------------------

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    ("kk", "problems"),
    [
        ("1771012505240001", []),
        ("1701010101990001", []),  # 1999: the century is the latest not in the future
        ("1771012902240001", []),  # 2024 is a leap year
        ("1771012411260001", []),  # issued yesterday
        ("1771012902230001", ["KK issue date 29-02 is not a date"]),
        ("1771013102240001", ["KK issue date 31-02 is not a date"]),
        ("1771013104240001", ["KK issue date 31-04 is not a date"]),
        ("1771010013240001", ["KK issue date 00-13 is not a date"]),
        (
            "1771014505240001",
            ["KK issue date 45-05 is not a date (a KK date has no +40 for women)"],
        ),
        ("1771012505240000", ["KK serial 0000 is never issued (serials start at 0001)"]),
        (
            "1771013102240000",
            [
                "KK issue date 31-02 is not a date",
                "KK serial 0000 is never issued (serials start at 0001)",
            ],
        ),
        ("177101250524001", ["KK must be exactly 16 digits, got 15"]),
        (
            "17710125052400O1",
            ["KK must be exactly 16 digits, got 16 characters with a non-digit at position 15"],
        ),
    ],
)
def test_kk_rules(kk: str, problems: list[str]) -> None:
    assert kk_problems(kk, today=TODAY) == problems


def test_schema_enumerations_are_the_tables() -> None:
    pairs = [
        (fields.Relationship, models.RELATIONSHIPS),
        (fields.Disability, models.DISABILITIES),
        (fields.Education, models.EDUCATION),
        (fields.Floor, models.FLOOR),
        (fields.Wall, models.WALL),
        (fields.Roof, models.ROOF),
        (fields.Water, models.WATER),
        (fields.Sanitation, models.SANITATION),
        (fields.Electricity, models.ELECTRICITY),
    ]
    for literal, values in pairs:
        assert get_args(literal) == values


class TestRegisterHousehold:
    @pytest.mark.parametrize(
        ("kk", "reason"),
        [
            ("1771013102240001", "KK issue date 31-02 is not a date"),
            ("1771014505240001", "a KK date has no +40"),
            ("1771012505240000", "KK serial 0000 is never issued"),
            ("9999992505240001", "KK district code 999999 does not exist"),
            ("1771002505240001", "KK district code 177100 does not exist"),
        ],
    )
    async def test_invalid_kk_is_422_with_the_reason(
        self, registry: Registry, kk: str, reason: str
    ) -> None:
        response = await registry.client.post(
            "/v1/households", json=household_body(kk=kk), headers=registry.headers
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/invalid-kk")
        assert problem["field"] == "kk"
        assert reason in problem["detail"]

    @pytest.mark.parametrize("kk", ["177101250524001", "17710125052400O1", 1771012505240001])
    async def test_malformed_kk_names_the_field(self, registry: Registry, kk: object) -> None:
        response = await registry.client.post(
            "/v1/households", json=household_body(kk=kk), headers=registry.headers
        )
        assert response.status_code == 422
        assert "body.kk" in [e["field"] for e in response.json()["errors"]]

    async def test_registers_and_emits(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household(house_fit=False)
        assert (household["version"], household["status"], household["members"]) == (
            1,
            "active",
            [],
        )
        [(topic, event_type, data)] = await events(registry_settings, household["id"])
        assert (topic, event_type) == ("registry.household.v1", "registry.household.registered.v1")
        assert data["household_id"] == household["id"]
        assert (data["village_code"], data["decile"], data["house_fit"]) == (VILLAGE, 2, False)
        assert {"kk", "address"}.isdisjoint(data)  # minimum personal data in events
        rows = await fetch(
            registry_settings,
            "SELECT version FROM household_version WHERE household_id = $1",
            uuid.UUID(household["id"]),
        )
        assert [r["version"] for r in rows] == [1]

    async def test_village_outside_the_callers_region_is_403(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        response = await registry.client.post(
            "/v1/households",
            json=household_body(village_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(scopes=WRITE_READ, regions=["1771"]),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/outside-region")

    @pytest.mark.parametrize("village", ["1771019999", "1771011"])
    async def test_village_must_be_real(self, registry: Registry, village: str) -> None:
        body = household_body(village_code=village, kk=make_kk())
        response = await registry.client.post("/v1/households", json=body, headers=registry.headers)
        assert response.status_code == 422

    async def test_duplicate_kk_is_409(self, registry: Registry) -> None:
        body = household_body()
        first = await registry.client.post("/v1/households", json=body, headers=registry.headers)
        second = await registry.client.post("/v1/households", json=body, headers=registry.headers)
        assert (first.status_code, second.status_code) == (201, 409)
        assert second.json()["type"].endswith("/kk-already-registered")

    async def test_idempotency_key_registers_once(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        body = household_body()
        headers = {**registry.headers, "Idempotency-Key": str(uuid.uuid4())}
        first = await registry.client.post("/v1/households", json=body, headers=headers)
        second = await registry.client.post("/v1/households", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        assert await types(registry_settings, first.json()["id"]) == [
            "registry.household.registered.v1"
        ]


class TestUpdateHousehold:
    async def test_conditions_change_emits_updated_with_changed(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household()
        response = await registry.client.patch(
            f"/v1/households/{household['id']}",
            json={"address": "Jl. Baru 1", "roof": "tile", "floor": "cement"},  # floor as before
            headers=registry.headers,
        )
        assert response.status_code == 200, response.text
        assert (response.json()["version"], response.json()["roof"]) == (2, "tile")
        [_, (_, event_type, data)] = await events(registry_settings, household["id"])
        assert event_type == "registry.household.updated.v1"
        assert (data["changed"], data["roof"], data["version"]) == (["address", "roof"], "tile", 2)

    async def test_decile_change_emits_decile_changed(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household(decile=2)
        response = await registry.client.patch(
            f"/v1/households/{household['id']}", json={"decile": 5}, headers=registry.headers
        )
        assert response.status_code == 200
        [_, (_, event_type, data)] = await events(registry_settings, household["id"])
        assert event_type == "registry.household.decile_changed.v1"
        assert (data["decile"], data["previous_decile"], data["version"]) == (5, 2, 2)

    async def test_decile_may_be_unset_with_null(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household(decile=3)
        response = await registry.client.patch(
            f"/v1/households/{household['id']}", json={"decile": None}, headers=registry.headers
        )
        assert response.json()["decile"] is None
        [*_, (_, _, data)] = await events(registry_settings, household["id"])
        assert (data["decile"], data["previous_decile"]) == (None, 3)

    async def test_both_in_one_request_emit_both_with_one_version(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household(decile=1)
        response = await registry.client.patch(
            f"/v1/households/{household['id']}",
            json={"decile": 3, "sanitation": "private", "house_fit": False},
            headers=registry.headers,
        )
        assert response.json()["version"] == 2
        emitted = await events(registry_settings, household["id"])
        assert [(t, d["version"]) for _, t, d in emitted[1:]] == [
            ("registry.household.updated.v1", 2),
            ("registry.household.decile_changed.v1", 2),
        ]
        assert emitted[1][2]["changed"] == ["house_fit", "sanitation"]

    async def test_identical_values_emit_nothing_and_keep_the_version(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household()
        same = {k: household[k] for k in ("address", "decile", "floor", "roof", "house_fit")}
        response = await registry.client.patch(
            f"/v1/households/{household['id']}", json=same, headers=registry.headers
        )
        assert response.status_code == 200
        assert response.json()["version"] == 1
        assert response.json()["modified_at"] == household["modified_at"]
        assert await types(registry_settings, household["id"]) == [
            "registry.household.registered.v1"
        ]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"floor": None}, "body.floor"),
            ({"roof": "gold"}, "body.roof"),
            ({"decile": 11}, "body.decile"),
            ({"kk": "1771012505240001"}, "body.kk"),
            ({"address": "x" * 501}, "body.address"),
        ],
    )
    async def test_bad_fields_are_named(
        self, registry: Registry, body: dict[str, Any], field: str
    ) -> None:
        household = await registry.household()
        response = await registry.client.patch(
            f"/v1/households/{household['id']}", json=body, headers=registry.headers
        )
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]

    async def test_outside_the_region_reads_as_missing(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        household = await registry.household(village_code=OTHER_REGENCY_VILLAGE)
        regional = auth_header(scopes=WRITE_READ, regions=["1771"])
        outside = await registry.client.patch(
            f"/v1/households/{household['id']}", json={"decile": 4}, headers=regional
        )
        missing = await registry.client.patch(
            f"/v1/households/{uuid.uuid4()}", json={"decile": 4}, headers=regional
        )
        assert outside.status_code == missing.status_code == 404
        assert outside.json()["type"] == missing.json()["type"]


class TestPersonOnAHousehold:
    async def test_registration_keeps_working_without_a_household(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        person = await registry.person()
        assert (person["household_id"], person["relationship"], person["version"]) == (
            None,
            "other",
            1,
        )
        [(_, event_type, data)] = await events(registry_settings, person["id"])
        assert event_type == "registry.person.registered.v1"
        assert data["household_id"] is None

    async def test_registers_on_a_household(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household = await registry.household()
        person = await registry.person(
            household_id=household["id"],
            relationship="head",
            disability="physical",
            education="smp",
            occupation="nelayan",
        )
        [(_, _, data)] = await events(registry_settings, person["id"])
        assert (data["household_id"], data["relationship"], data["disability"]) == (
            household["id"],
            "head",
            "physical",
        )
        assert {"occupation", "education", "full_name"}.isdisjoint(data)

    async def test_a_second_living_head_is_409_naming_the_constraint(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household, [head, spouse, *_] = await registry.family(3)
        second = await registry.client.post(
            "/v1/persons",
            json=person_body(household_id=household["id"], relationship="head"),
            headers=registry.headers,
        )
        assert second.status_code == 409
        problem = second.json()
        assert problem["type"].endswith("/household-already-has-head")
        assert problem["constraint"] == "uq_person_household_head"
        assert "uq_person_household_head" in problem["detail"]
        promoted = await registry.client.patch(
            f"/v1/persons/{spouse['id']}", json={"relationship": "head"}, headers=registry.headers
        )
        assert promoted.status_code == 409
        assert await types(registry_settings, spouse["id"]) == ["registry.person.registered.v1"]

    async def test_the_household_must_be_in_the_persons_village(self, registry: Registry) -> None:
        household = await registry.household(village_code=NEIGHBOUR_VILLAGE)
        response = await registry.client.post(
            "/v1/persons", json=person_body(household_id=household["id"]), headers=registry.headers
        )
        assert response.status_code == 422
        assert response.json()["field"] == "village_code"

    async def test_an_unknown_household_is_422(self, registry: Registry) -> None:
        response = await registry.client.post(
            "/v1/persons",
            json=person_body(household_id=str(uuid.uuid4())),
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-household")

    async def test_head_needs_a_household(self, registry: Registry) -> None:
        response = await registry.client.post(
            "/v1/persons", json=person_body(relationship="head"), headers=registry.headers
        )
        assert response.status_code == 422
        assert response.json()["field"] == "relationship"


class TestUpdatePerson:
    async def test_update_emits_updated_with_changed(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        person = await registry.person(education="sd")
        response = await registry.client.patch(
            f"/v1/persons/{person['id']}",
            json={"full_name": "Warga Baru", "education": "sma", "disability": "none"},
            headers=registry.headers,
        )
        assert response.status_code == 200, response.text
        assert (response.json()["full_name"], response.json()["version"]) == ("Warga Baru", 2)
        [_, (topic, event_type, data)] = await events(registry_settings, person["id"])
        assert (topic, event_type) == ("registry.person.v1", "registry.person.updated.v1")
        assert (data["changed"], data["version"]) == (["education", "full_name"], 2)
        assert "full_name" not in data

    async def test_identical_values_emit_nothing_and_keep_the_version(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        person = await registry.person(occupation="petani")
        response = await registry.client.patch(
            f"/v1/persons/{person['id']}",
            json={"full_name": person["full_name"], "occupation": " petani "},
            headers=registry.headers,
        )
        assert response.status_code == 200
        assert response.json()["version"] == 1
        assert await types(registry_settings, person["id"]) == ["registry.person.registered.v1"]
        rows = await fetch(
            registry_settings,
            "SELECT count(*) AS n FROM person_version WHERE person_id = $1",
            uuid.UUID(person["id"]),
        )
        assert rows[0]["n"] == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"full_name": None}, "body.full_name"),
            ({"full_name": ""}, "body.full_name"),
            ({"education": "phd"}, "body.education"),
            ({"nik": "1771012505900001"}, "body.nik"),
            ({"occupation": "x" * 101}, "body.occupation"),
        ],
    )
    async def test_bad_fields_are_named(
        self, registry: Registry, body: dict[str, Any], field: str
    ) -> None:
        person = await registry.person()
        response = await registry.client.patch(
            f"/v1/persons/{person['id']}", json=body, headers=registry.headers
        )
        assert response.status_code == 422
        assert field in [e["field"] for e in response.json()["errors"]]

    async def test_needs_the_write_scope(self, registry: Registry, auth_header: Headers) -> None:
        person = await registry.person()
        response = await registry.client.patch(
            f"/v1/persons/{person['id']}",
            json={"education": "sma"},
            headers=auth_header(scopes=["registry:read"]),
        )
        assert response.status_code == 403


class TestDeath:
    async def test_death_emits_died_and_a_second_is_409(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        person = await registry.person(birth_date=date(1950, 3, 1), sex="M")
        url = f"/v1/persons/{person['id']}/death"
        body = {"death_date": "2026-10-02", "source": "dukcapil"}
        first = await registry.client.post(url, json=body, headers=registry.headers)
        assert first.status_code == 200, first.text
        assert (first.json()["status"], first.json()["death_date"]) == ("deceased", "2026-10-02")
        again = await registry.client.post(url, json=body, headers=registry.headers)
        assert again.status_code == 409
        assert again.json()["type"].endswith("/person-deceased")
        [_, (_, event_type, data)] = await events(registry_settings, person["id"])
        assert event_type == "registry.person.died.v1"
        assert (data["status"], data["death_date"], data["source"], data["version"]) == (
            "deceased",
            "2026-10-02",
            "dukcapil",
            2,
        )

    @pytest.mark.parametrize(
        ("death_date", "reason"),
        [("1949-12-31", "before the birth date"), ("2999-01-01", "in the future")],
    )
    async def test_impossible_dates_are_422(
        self, registry: Registry, death_date: str, reason: str
    ) -> None:
        person = await registry.person(birth_date=date(1950, 3, 1), sex="F")
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/death",
            json={"death_date": death_date, "source": "facilitator"},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert (response.json()["field"], reason in response.json()["detail"]) == (
            "death_date",
            True,
        )

    async def test_a_deceased_head_frees_the_place(self, registry: Registry) -> None:
        household, [head, spouse, *_] = await registry.family(3)
        await registry.client.post(
            f"/v1/persons/{head['id']}/death",
            json={"death_date": "2025-01-10", "source": "family"},
            headers=registry.headers,
        )
        promoted = await registry.client.patch(
            f"/v1/persons/{spouse['id']}", json={"relationship": "head"}, headers=registry.headers
        )
        assert promoted.status_code == 200, promoted.text

    async def test_unknown_source_is_422(self, registry: Registry) -> None:
        person = await registry.person()
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/death",
            json={"death_date": "2025-01-10", "source": "rumour"},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "body.source"


class TestMove:
    async def test_move_to_another_village_and_household(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        old, [_, spouse, *_] = await registry.family(3)
        new = await registry.household(village_code=NEIGHBOUR_VILLAGE)
        response = await registry.client.post(
            f"/v1/persons/{spouse['id']}/move",
            json={"village_code": NEIGHBOUR_VILLAGE, "household_id": new["id"]},
            headers=registry.headers,
        )
        assert response.status_code == 200, response.text
        moved = response.json()
        assert (moved["village_code"], moved["household_id"], moved["relationship"]) == (
            NEIGHBOUR_VILLAGE,
            new["id"],
            "other",  # a new card and no relationship given
        )
        [_, (_, event_type, data)] = await events(registry_settings, spouse["id"])
        assert event_type == "registry.person.moved.v1"
        assert (data["from_village_code"], data["from_household_id"]) == (VILLAGE, old["id"])
        assert (data["village_code"], data["household_id"]) == (NEIGHBOUR_VILLAGE, new["id"])

    async def test_leaving_the_card_within_the_village(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household, [_, _, child] = await registry.family(3)
        response = await registry.client.post(
            f"/v1/persons/{child['id']}/move",
            json={"village_code": VILLAGE},
            headers=registry.headers,
        )
        assert (response.json()["household_id"], response.json()["relationship"]) == (
            None,
            "other",
        )
        [*_, (_, _, data)] = await events(registry_settings, child["id"])
        assert (data["from_household_id"], data["household_id"]) == (household["id"], None)

    async def test_moving_to_where_one_is_changes_nothing(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household, [_, spouse] = await registry.family(2)
        response = await registry.client.post(
            f"/v1/persons/{spouse['id']}/move",
            json={"village_code": VILLAGE, "household_id": household["id"]},
            headers=registry.headers,
        )
        assert (response.status_code, response.json()["version"]) == (200, 1)
        assert response.json()["relationship"] == "spouse"
        assert await types(registry_settings, spouse["id"]) == ["registry.person.registered.v1"]

    async def test_new_place_outside_the_region_is_403(
        self, registry: Registry, registry_settings: RegistrySettings, auth_header: Headers
    ) -> None:
        person = await registry.person()
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/move",
            json={"village_code": OTHER_REGENCY_VILLAGE},
            headers=auth_header(scopes=WRITE_READ, regions=["1771"]),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/outside-region")
        assert await types(registry_settings, person["id"]) == ["registry.person.registered.v1"]

    async def test_old_place_outside_the_region_reads_as_missing(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        person = await registry.person(village_code=OTHER_REGENCY_VILLAGE)
        regional = auth_header(scopes=WRITE_READ, regions=["1771"])
        outside = await registry.client.post(
            f"/v1/persons/{person['id']}/move", json={"village_code": VILLAGE}, headers=regional
        )
        missing = await registry.client.post(
            f"/v1/persons/{uuid.uuid4()}/move", json={"village_code": VILLAGE}, headers=regional
        )
        assert outside.status_code == missing.status_code == 404
        assert outside.json()["type"] == missing.json()["type"]

    async def test_a_region_covering_both_places_may_move(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        person = await registry.person()
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/move",
            json={"village_code": NEIGHBOUR_VILLAGE},
            headers=auth_header(scopes=WRITE_READ, regions=["177101"]),
        )
        assert response.status_code == 200

    async def test_the_household_must_be_in_the_new_village(self, registry: Registry) -> None:
        person = await registry.person()
        household = await registry.household(village_code=NEIGHBOUR_VILLAGE)
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/move",
            json={"village_code": VILLAGE, "household_id": household["id"]},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert response.json()["field"] == "village_code"

    async def test_the_dead_do_not_move(self, registry: Registry) -> None:
        person = await registry.person(birth_date=date(1940, 1, 1), sex="M")
        await registry.client.post(
            f"/v1/persons/{person['id']}/death",
            json={"death_date": "2020-05-05", "source": "dukcapil"},
            headers=registry.headers,
        )
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/move",
            json={"village_code": NEIGHBOUR_VILLAGE},
            headers=registry.headers,
        )
        assert response.status_code == 409

    async def test_moving_in_as_second_head_is_409(self, registry: Registry) -> None:
        household, _ = await registry.family(2)
        person = await registry.person()
        response = await registry.client.post(
            f"/v1/persons/{person['id']}/move",
            json={"village_code": VILLAGE, "household_id": household["id"], "relationship": "head"},
            headers=registry.headers,
        )
        assert response.status_code == 409
        assert response.json()["constraint"] == "uq_person_household_head"


class TestHouseholdMove:
    async def move(self, registry: Registry, household_id: str, **body: Any) -> Any:
        return await registry.client.post(
            f"/v1/households/{household_id}/move", json=body, headers=registry.headers
        )

    async def test_the_family_moves_together(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household, [head, spouse, child] = await registry.family(3)
        await registry.client.post(
            f"/v1/persons/{child['id']}/death",
            json={"death_date": "2024-05-05", "source": "dukcapil"},
            headers=registry.headers,
        )
        response = await self.move(
            registry, household["id"], village_code=NEIGHBOUR_VILLAGE, address="Jl. Baru 1"
        )
        assert response.status_code == 200, response.text
        moved = response.json()
        assert (moved["village_code"], moved["address"], moved["kk"], moved["version"]) == (
            NEIGHBOUR_VILLAGE,
            "Jl. Baru 1",
            household["kk"],
            2,
        )
        for member in (head, spouse):
            [_, (_, event_type, data)] = await events(registry_settings, member["id"])
            assert event_type == "registry.person.moved.v1"
            assert (data["village_code"], data["from_village_code"]) == (NEIGHBOUR_VILLAGE, VILLAGE)
            assert data["household_id"] == data["from_household_id"] == household["id"]
        # The dead keep the village recorded for them.
        assert await types(registry_settings, child["id"]) == [
            "registry.person.registered.v1",
            "registry.person.died.v1",
        ]
        [*_, (_, event_type, data)] = await events(registry_settings, household["id"])
        assert event_type == "registry.household.updated.v1"
        assert (data["changed"], data["village_code"]) == (
            ["address", "village_code"],
            NEIGHBOUR_VILLAGE,
        )

    async def test_a_new_kk_when_moving_to_another_district(
        self, registry: Registry, registry_settings: RegistrySettings, auth_header: Headers
    ) -> None:
        household, [head, _] = await registry.family(2)
        new_kk = make_kk(district=OTHER_REGENCY_VILLAGE[:6])
        response = await self.move(
            registry, household["id"], village_code=OTHER_REGENCY_VILLAGE, address="Desa", kk=new_kk
        )
        assert response.status_code == 200, response.text
        assert response.json()["kk"] == new_kk
        [*_, (_, _, data)] = await events(registry_settings, household["id"])
        assert data["changed"] == ["address", "kk", "village_code"]
        by_kk = await registry.client.get(
            f"/v1/households/by-kk/{new_kk}",
            params={"purpose": "moved family check"},
            headers=auth_header(scopes=["registry:read", IDENTITY]),
        )
        assert by_kk.status_code == 200
        assert [m["id"] for m in by_kk.json()["members"]][0] == head["id"]

    async def test_moving_to_where_it_is_changes_nothing(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        household, [head, _] = await registry.family(2)
        response = await self.move(
            registry, household["id"], village_code=VILLAGE, address=household["address"]
        )
        assert (response.status_code, response.json()["version"]) == (200, 1)
        assert await types(registry_settings, household["id"]) == [
            "registry.household.registered.v1"
        ]
        assert await types(registry_settings, head["id"]) == ["registry.person.registered.v1"]

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"village_code": "1771019999", "address": "x"}, 422, "village_code"),
            ({"village_code": VILLAGE[:6], "address": "x"}, 422, "body.village_code"),
            ({"village_code": NEIGHBOUR_VILLAGE, "address": ""}, 422, "body.address"),
            (
                {"village_code": NEIGHBOUR_VILLAGE, "address": "x", "kk": "1771013102240001"},
                422,
                "kk",
            ),
        ],
    )
    async def test_bad_moves_are_refused_and_change_nothing(
        self,
        registry: Registry,
        registry_settings: RegistrySettings,
        body: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        household, [head, _] = await registry.family(2)
        response = await self.move(registry, household["id"], **body)
        assert response.status_code == status, response.text
        problem = response.json()
        fields = [problem.get("field")] + [e["field"] for e in problem.get("errors", [])]
        assert field in fields, problem
        assert await types(registry_settings, head["id"]) == ["registry.person.registered.v1"]

    async def test_a_kk_already_on_another_card_is_409(self, registry: Registry) -> None:
        household, _ = await registry.family(2)
        other = await registry.household()
        response = await self.move(
            registry, household["id"], village_code=VILLAGE, address="x", kk=other["kk"]
        )
        assert response.status_code == 409

    async def test_outside_the_region(self, registry: Registry, auth_header: Headers) -> None:
        household, _ = await registry.family(2)
        regional = auth_header(scopes=WRITE_READ, regions=["1771"])
        to_outside = await registry.client.post(
            f"/v1/households/{household['id']}/move",
            json={"village_code": OTHER_REGENCY_VILLAGE, "address": "x"},
            headers=regional,
        )
        assert to_outside.status_code == 403
        elsewhere = await registry.household(village_code=OTHER_REGENCY_VILLAGE)
        from_outside = await registry.client.post(
            f"/v1/households/{elsewhere['id']}/move",
            json={"village_code": VILLAGE, "address": "x"},
            headers=regional,
        )
        assert from_outside.status_code == 404


class TestHistory:
    async def test_one_version_per_real_change_and_as_of(
        self,
        registry: Registry,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        person = await registry.person(education="sd")
        url = f"/v1/persons/{person['id']}"
        for body in ({"education": "smp"}, {"education": "smp"}, {"occupation": "guru"}):
            response = await registry.client.patch(url, json=body, headers=registry.headers)
            assert response.status_code == 200
        reader = auth_header(
            agency="BPS", scopes=["registry:read", IDENTITY, "registry:read:socioeconomic"]
        )
        history = await registry.client.get(
            f"{url}/versions", params={"purpose": "data audit"}, headers=reader
        )
        assert history.status_code == 200, history.text
        versions = history.json()["versions"]
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert [v["data"]["education"] for v in versions] == ["sd", "smp", "smp"]
        assert versions[0]["valid_to"] == versions[1]["valid_from"]
        assert versions[2]["valid_to"] is None
        assert versions[0]["data"]["full_name"] == person["full_name"]

        instant = datetime.fromisoformat(versions[1]["valid_from"]) - timedelta(microseconds=1)
        as_of = await registry.client.get(
            f"{url}/versions",
            params={"purpose": "data audit", "as_of": instant.isoformat()},
            headers=reader,
        )
        assert [v["version"] for v in as_of.json()["versions"]] == [1]
        before = await registry.client.get(
            f"{url}/versions",
            params={"purpose": "data audit", "as_of": "2000-01-01T00:00:00+07:00"},
            headers=reader,
        )
        assert before.json()["versions"] == []

        audit = await fetch(
            registry_settings,
            "SELECT agency, purpose, action FROM audit_log WHERE resource_id = $1",
            person["id"],
        )
        assert [tuple(r) for r in audit] == [("BPS", "data audit", "read_history")] * 3

    async def test_versions_are_projected_by_scope(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        person = await registry.person()
        response = await registry.client.get(
            f"/v1/persons/{person['id']}/versions",
            params={"purpose": "nutrition planning"},
            headers=auth_header(agency="BGN", scopes=["registry:read"]),
        )
        [version] = response.json()["versions"]
        assert {"nik", "full_name", "birth_date", "education"}.isdisjoint(version["data"])
        assert version["data"]["birth_year"] == int(person["birth_date"][:4])
        assert version["data"]["village_code"] == VILLAGE

    async def test_household_history_follows_its_changes(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        household = await registry.household(decile=2)
        url = f"/v1/households/{household['id']}"
        await registry.client.patch(url, json={"decile": 4}, headers=registry.headers)
        await registry.client.patch(url, json={"decile": 4}, headers=registry.headers)
        reader = auth_header(scopes=["registry:read", "registry:read:socioeconomic"])
        response = await registry.client.get(
            f"{url}/versions", params={"purpose": "decile review"}, headers=reader
        )
        versions = response.json()["versions"]
        assert [(v["version"], v["data"]["decile"]) for v in versions] == [(1, 2), (2, 4)]
        assert "kk" not in versions[0]["data"]
        at_first = await registry.client.get(
            f"{url}/versions",
            params={"purpose": "decile review", "as_of": versions[0]["valid_from"]},
            headers=reader,
        )
        assert [v["data"]["decile"] for v in at_first.json()["versions"]] == [2]

    async def test_as_of_needs_a_utc_offset(self, registry: Registry) -> None:
        person = await registry.person()
        response = await registry.client.get(
            f"/v1/persons/{person['id']}/versions",
            params={"purpose": "audit", "as_of": "2026-01-01T00:00:00"},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.as_of"

    async def test_history_outside_the_region_reads_as_missing(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        person = await registry.person(village_code=OTHER_REGENCY_VILLAGE)
        response = await registry.client.get(
            f"/v1/persons/{person['id']}/versions",
            params={"purpose": "audit"},
            headers=auth_header(scopes=["registry:read"], regions=["1771"]),
        )
        assert response.status_code == 404


async def heads_per_household(
    settings: RegistrySettings, *household_ids: str
) -> dict[str, list[str]]:
    rows = await fetch(
        settings,
        "SELECT household_id::text AS h, id::text AS p FROM person "
        "WHERE household_id = ANY($1::uuid[]) AND relationship = 'head' AND status = 'alive'",
        list(household_ids),
    )
    heads: dict[str, list[str]] = {h: [] for h in household_ids}
    for row in rows:
        heads[row["h"]].append(row["p"])
    return heads


class TestSplit:
    async def test_members_leave_for_a_new_card(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        source, [head, spouse, son, daughter_in_law] = await registry.family(4)
        kk = make_kk()
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={
                "person_ids": [son["id"], daughter_in_law["id"]],
                "kk": kk,
                "head_id": son["id"],
                "relationships": {daughter_in_law["id"]: "spouse"},
            },
            headers=registry.headers,
        )
        assert response.status_code == 201, response.text
        old, new = response.json()["household"], response.json()["new_household"]
        assert {m["id"] for m in old["members"]} == {head["id"], spouse["id"]}
        assert [(m["id"], m["relationship"]) for m in new["members"]] == [
            (son["id"], "head"),  # the head comes first
            (daughter_in_law["id"], "spouse"),
        ]
        assert (new["kk"], new["village_code"], new["decile"]) == (kk, VILLAGE, None)
        assert (new["floor"], new["roof"]) == (source["floor"], source["roof"])
        assert await heads_per_household(registry_settings, old["id"], new["id"]) == {
            old["id"]: [head["id"]],
            new["id"]: [son["id"]],
        }

        [(_, registered, _)] = await events(registry_settings, new["id"])
        assert registered == "registry.household.registered.v1"
        [_, (_, split_type, split)] = await events(registry_settings, source["id"])
        assert split_type == "registry.household.split.v1"
        assert split["new_household_id"] == new["id"]
        assert sorted(split["person_ids"]) == sorted([son["id"], daughter_in_law["id"]])
        for member, relationship in ((son, "head"), (daughter_in_law, "spouse")):
            [_, (_, moved_type, moved)] = await events(registry_settings, member["id"])
            assert moved_type == "registry.person.moved.v1"
            assert (moved["from_household_id"], moved["household_id"]) == (source["id"], new["id"])
            assert (moved["relationship"], moved["version"]) == (relationship, 2)
        assert await types(registry_settings, head["id"]) == ["registry.person.registered.v1"]

    async def test_the_head_cannot_leave(self, registry: Registry) -> None:
        source, [head, spouse, *_] = await registry.family(3)
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={"person_ids": [head["id"], spouse["id"]], "kk": make_kk(), "head_id": head["id"]},
            headers=registry.headers,
        )
        assert (response.status_code, response.json()["field"]) == (422, "person_ids")

    async def test_only_members_can_leave(self, registry: Registry) -> None:
        source, _ = await registry.family(2)
        stranger = await registry.person()
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={"person_ids": [stranger["id"]], "kk": make_kk(), "head_id": stranger["id"]},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert stranger["id"] in response.json()["detail"]

    async def test_two_heads_on_the_new_card_is_409_and_nothing_changes(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        source, [_, _, first, second] = await registry.family(4)
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={
                "person_ids": [first["id"], second["id"]],
                "kk": make_kk(),
                "head_id": first["id"],
                "relationships": {second["id"]: "head"},
            },
            headers=registry.headers,
        )
        assert response.status_code == 409
        assert response.json()["constraint"] == "uq_person_household_head"
        assert await types(registry_settings, source["id"]) == ["registry.household.registered.v1"]
        assert await types(registry_settings, second["id"]) == ["registry.person.registered.v1"]

    async def test_invalid_new_kk_is_422(self, registry: Registry) -> None:
        source, [_, _, child] = await registry.family(3)
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={"person_ids": [child["id"]], "kk": "1771013102240001", "head_id": child["id"]},
            headers=registry.headers,
        )
        assert response.status_code == 422
        assert "KK issue date 31-02 is not a date" in response.json()["detail"]

    async def test_new_village_outside_the_region_is_403(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        source, [_, _, child] = await registry.family(3)
        response = await registry.client.post(
            f"/v1/households/{source['id']}/split",
            json={
                "person_ids": [child["id"]],
                "kk": make_kk(district=OTHER_REGENCY_VILLAGE[:6]),
                "head_id": child["id"],
                "village_code": OTHER_REGENCY_VILLAGE,
            },
            headers=auth_header(scopes=WRITE_READ, regions=["1771"]),
        )
        assert response.status_code == 403


class TestMerge:
    async def test_members_join_and_the_other_card_is_dissolved(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        keep, [keep_head, _] = await registry.family(2)
        other = await registry.household(village_code=NEIGHBOUR_VILLAGE)
        other_head = await registry.person(
            village_code=NEIGHBOUR_VILLAGE, household_id=other["id"], relationship="head"
        )
        other_child = await registry.person(
            village_code=NEIGHBOUR_VILLAGE, household_id=other["id"], relationship="child"
        )
        response = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={
                "household_id": other["id"],
                "relationships": {other_child["id"]: "grandchild"},
            },
            headers=registry.headers,
        )
        assert response.status_code == 200, response.text
        merged = response.json()
        relationships = {m["id"]: m["relationship"] for m in merged["members"]}
        assert relationships[other_head["id"]] == "other"  # the card already has a head
        assert relationships[other_child["id"]] == "grandchild"
        assert await heads_per_household(registry_settings, keep["id"], other["id"]) == {
            keep["id"]: [keep_head["id"]],
            other["id"]: [],
        }
        rows = await fetch(
            registry_settings,
            "SELECT status, version FROM household WHERE id = $1",
            uuid.UUID(other["id"]),
        )
        assert tuple(rows[0]) == ("dissolved", 2)

        [_, (_, merged_type, data)] = await events(registry_settings, keep["id"])
        assert merged_type == "registry.household.merged.v1"
        assert data["merged_household_id"] == other["id"]
        assert sorted(data["person_ids"]) == sorted([other_head["id"], other_child["id"]])
        [_, (_, dissolved_type, dissolved)] = await events(registry_settings, other["id"])
        assert dissolved_type == "registry.household.updated.v1"
        assert (dissolved["changed"], dissolved["status"]) == (["status"], "dissolved")
        [_, (_, moved_type, moved)] = await events(registry_settings, other_head["id"])
        assert moved_type == "registry.person.moved.v1"
        assert (moved["from_household_id"], moved["from_village_code"]) == (
            other["id"],
            NEIGHBOUR_VILLAGE,
        )
        assert (moved["household_id"], moved["village_code"]) == (keep["id"], VILLAGE)

        again = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={"household_id": other["id"]},
            headers=registry.headers,
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith("/household-dissolved")

    async def test_a_headless_card_takes_the_other_head(
        self, registry: Registry, registry_settings: RegistrySettings
    ) -> None:
        keep = await registry.household()
        other, [other_head, _] = await registry.family(2)
        response = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={"household_id": other["id"]},
            headers=registry.headers,
        )
        assert response.status_code == 200, response.text
        assert await heads_per_household(registry_settings, keep["id"]) == {
            keep["id"]: [other_head["id"]]
        }

    async def test_making_a_second_head_is_409(self, registry: Registry) -> None:
        keep, _ = await registry.family(2)
        other, [_, other_spouse] = await registry.family(2)
        response = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={"household_id": other["id"], "relationships": {other_spouse["id"]: "head"}},
            headers=registry.headers,
        )
        assert response.status_code == 409
        assert response.json()["constraint"] == "uq_person_household_head"

    async def test_not_with_itself_nor_across_regions(
        self, registry: Registry, auth_header: Headers
    ) -> None:
        keep = await registry.household()
        itself = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={"household_id": keep["id"]},
            headers=registry.headers,
        )
        assert itself.status_code == 422
        far = await registry.household(village_code=OTHER_REGENCY_VILLAGE)
        across = await registry.client.post(
            f"/v1/households/{keep['id']}/merge",
            json={"household_id": far["id"]},
            headers=auth_header(scopes=WRITE_READ, regions=["1771"]),
        )
        assert across.status_code == 422
        assert across.json()["type"].endswith("/unknown-household")
