"""The regions API: provinces, children of a code with keyset pages, one code."""

from __future__ import annotations

import csv
from collections.abc import Callable

import pytest

from registry.region.codes import WILAYAH_DIR
from shared.testing import RunningService

PROBLEM = "application/problem+json"
READ = {"scopes": ["registry:read"]}


def csv_children(filename: str, parent_column: str, parent: str) -> list[str]:
    with open(WILAYAH_DIR / filename, newline="", encoding="utf-8") as handle:
        return sorted(row["code"] for row in csv.DictReader(handle) if row[parent_column] == parent)


class TestProvinces:
    async def test_lists_the_38_provinces_in_code_order(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/provinces", headers=auth_header(**READ)
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert len(items) == 38
        codes = [item["code"] for item in items]
        assert codes == sorted(codes)
        assert {"code": "17", "level": 1, "parent_code": None, "name": "Bengkulu"} in items

    async def test_needs_a_token(self, registry_service: RunningService) -> None:
        response = await registry_service.client.get("/v1/regions/provinces")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM

    async def test_needs_the_read_scope(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/provinces", headers=auth_header(scopes=["registry:stats"])
        )
        assert response.status_code == 403


class TestChildren:
    async def test_bengkulu_has_ten_regencies(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/17/children", headers=auth_header(**READ)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert [item["code"] for item in page["items"]] == [
            "1701",
            "1702",
            "1703",
            "1704",
            "1705",
            "1706",
            "1707",
            "1708",
            "1709",
            "1771",
        ]
        assert page["items"][-1] == {
            "code": "1771",
            "level": 2,
            "parent_code": "17",
            "name": "Kota Bengkulu",
        }
        assert page["next_after"] is None

    async def test_districts_of_kota_bengkulu(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/1771/children", headers=auth_header(**READ)
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert [item["code"] for item in items] == csv_children(
            "districts.csv", "regency_code", "1771"
        )
        assert len(items) == 9
        assert items[0]["name"] == "Selebar"
        assert {item["level"] for item in items} == {3}

    async def test_villages_of_a_district(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/177101/children", headers=auth_header(**READ)
        )
        assert response.status_code == 200, response.text
        items = response.json()["items"]
        assert "1771011001" in [item["code"] for item in items]
        assert {item["level"] for item in items} == {4}

    @pytest.mark.parametrize("limit", [1, 7, 50, 108, 1000])
    async def test_pages_cover_every_village_exactly_once(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        limit: int,
    ) -> None:
        # Abenaho (950603, Papua Pegunungan) has the most villages of any district: 108.
        expected = csv_children("villages.csv", "district_code", "950603")
        assert len(expected) == 108
        served: list[str] = []
        after: str | None = None
        pages = 0
        while True:
            params: dict[str, str | int] = {"limit": limit}
            if after is not None:
                params["after"] = after
            response = await registry_service.client.get(
                "/v1/regions/950603/children", params=params, headers=auth_header(**READ)
            )
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= limit
            served += [item["code"] for item in page["items"]]
            pages += 1
            after = page["next_after"]
            if after is None:
                break
        assert served == expected
        assert pages == -(-108 // limit)

    async def test_a_village_has_no_children(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/1771011001/children", headers=auth_header(**READ)
        )
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_after": None}

    async def test_unknown_code_is_404(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/1799/children", headers=auth_header(**READ)
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/region-not-found")

    @pytest.mark.parametrize(
        ("path", "params", "field"),
        [
            ("/v1/regions/177/children", {}, "path.code"),
            ("/v1/regions/17710110011/children", {}, "path.code"),
            ("/v1/regions/17x1/children", {}, "path.code"),
            ("/v1/regions/1771/children", {"limit": 0}, "query.limit"),
            ("/v1/regions/1771/children", {"limit": 1001}, "query.limit"),
            ("/v1/regions/1771/children", {"limit": "many"}, "query.limit"),
            ("/v1/regions/1771/children", {"after": "abc"}, "query.after"),
        ],
    )
    async def test_malformed_input_is_422_naming_the_field(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        path: str,
        params: dict[str, object],
        field: str,
    ) -> None:
        response = await registry_service.client.get(
            path, params=params, headers=auth_header(**READ)
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert field in [error["field"] for error in response.json()["errors"]]


class TestOneRegion:
    async def test_reads_a_village(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/1771011001", headers=auth_header(**READ)
        )
        assert response.status_code == 200
        assert response.json() == {
            "code": "1771011001",
            "level": 4,
            "parent_code": "177101",
            "name": "Pagar Dewa",
        }

    async def test_unknown_code_is_404(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/regions/1771019999", headers=auth_header(**READ)
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("/region-not-found")

    async def test_malformed_code_is_422(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get("/v1/regions/1", headers=auth_header(**READ))
        assert response.status_code == 422
        assert "path.code" in [error["field"] for error in response.json()["errors"]]
