"""Statistics by region, decile and status, over data written straight into the tables.

All data live in Kabupaten Raja Ampat (9603, Papua Barat Daya), which no other test uses, so
every count below is exact.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import asyncpg
import pytest
import pytest_asyncio

from registry.demo.generator import (
    HOUSEHOLD_COLUMNS,
    PERSON_COLUMNS,
    SyntheticHousehold,
    generate_households,
    household_record,
    person_records,
)
from registry.region.codes import WILAYAH_DIR
from registry.settings import RegistrySettings
from shared.db import sync_url
from shared.testing import RunningService

from .factories import make_nik

REGENCY = "9603"
DISTRICT = "960301"
PROBLEM = "application/problem+json"
STATS = {"scopes": ["registry:stats"]}
STATUSES = ("alive", "deceased", "moved")


@dataclass
class Expected:
    """What the inserted data should count up to, computed in Python."""

    households: list[SyntheticHousehold]
    # (village, decile key, status) of every person, the loose ones included
    people: list[tuple[str, str, str]] = field(default_factory=list)

    def counts(self, key_of: Callable[[str, str, str], str | None]) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for village, decile, status in self.people:
            key = key_of(village, decile, status)
            if key is not None:
                out[key][status] += 1
        return out


@pytest_asyncio.fixture(scope="module")
async def data(registry_settings: RegistrySettings) -> Expected:
    households = list(generate_households(REGENCY, 300, seed=11))
    expected = Expected(households)
    for h in households:
        for p in h.members:
            expected.people.append(
                (h.village_code, "unranked" if h.decile is None else str(h.decile), p.status)
            )
    village = households[0].village_code
    conn = await asyncpg.connect(sync_url(registry_settings.database_url))
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "household",
                records=[household_record(h) for h in households],
                columns=HOUSEHOLD_COLUMNS,
            )
            await conn.copy_records_to_table(
                "person",
                records=[r for h in households for r in person_records(h)],
                columns=PERSON_COLUMNS,
            )
            # A card dissolved by a merge, with its deceased member left on it: the card does
            # not count, the person counts as unranked.
            dissolved = await conn.fetchval(
                "INSERT INTO household (id, kk, village_code, decile, status) "
                "VALUES (gen_random_uuid(), $1, $2, 3, 'dissolved') RETURNING id",
                f"{village[:6]}0101209999",
                village,
            )
            born = date(1950, 3, 4)
            await conn.execute(
                "INSERT INTO person (id, nik, full_name, birth_date, sex, village_code, "
                "household_id, relationship, status, death_date) VALUES (gen_random_uuid(), "
                "$1, 'Almarhum', $2, 'M', $3, $4, 'head', 'deceased', '2024-01-02')",
                make_nik(birth_date=born, sex="M", district=village[:6], serial=9999),
                born,
                village,
                dissolved,
            )
            # Someone registered without a family card yet.
            born = date(2001, 7, 8)
            await conn.execute(
                "INSERT INTO person (id, nik, full_name, birth_date, sex, village_code) "
                "VALUES (gen_random_uuid(), $1, 'Tanpa KK', $2, 'F', $3)",
                make_nik(birth_date=born, sex="F", district=village[:6], serial=9999),
                born,
                village,
            )
    finally:
        await conn.close()
    expected.people += [(village, "unranked", "deceased"), (village, "unranked", "alive")]
    return expected


def children_of(parent: str) -> dict[str, str]:
    filename, column = (
        ("districts.csv", "regency_code")
        if len(parent) == 4
        else (
            "villages.csv",
            "district_code",
        )
    )
    with open(WILAYAH_DIR / filename, newline="", encoding="utf-8") as handle:
        return {row["code"]: row["name"] for row in csv.DictReader(handle) if row[column] == parent}


def people_fields(counter: Counter[str]) -> dict[str, int]:
    return {"people": sum(counter.values()), **{s: counter[s] for s in STATUSES}}


async def get_statistics(
    service: RunningService, headers: dict[str, str], **params: str
) -> dict[str, object]:
    response = await service.client.get("/v1/statistics", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


class TestByDecile:
    async def test_counts_households_and_people_per_decile(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        body = await get_statistics(
            registry_service, auth_header(**STATS), region=REGENCY, by="decile"
        )
        assert body["region"] == REGENCY
        assert body["region_name"] == "Kabupaten Raja Ampat"
        households = Counter(
            "unranked" if h.decile is None else str(h.decile) for h in data.households
        )
        people = data.counts(lambda village, decile, status: decile)
        keys = [str(d) for d in range(1, 11)] + ["unranked"]
        assert body["groups"] == [
            {"key": key, "name": None, "households": households[key], **people_fields(people[key])}
            for key in keys
        ]
        everyone: Counter[str] = Counter(status for _, _, status in data.people)
        assert body["total"] == {"households": len(data.households), **people_fields(everyone)}

    async def test_default_grouping_is_decile(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        body = await get_statistics(registry_service, auth_header(**STATS), region=REGENCY)
        assert body["by"] == "decile"


class TestByStatus:
    async def test_counts_people_per_status_and_their_households(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        body = await get_statistics(
            registry_service, auth_header(**STATS), region=REGENCY, by="status"
        )
        people: Counter[str] = Counter(status for _, _, status in data.people)
        with_status = {
            status: sum(any(p.status == status for p in h.members) for h in data.households)
            for status in STATUSES
        }
        assert all(people[status] > 0 for status in STATUSES)
        assert body["groups"] == [
            {
                "key": status,
                "name": None,
                "households": with_status[status],
                **people_fields(Counter({status: people[status]})),
            }
            for status in STATUSES
        ]
        assert body["total"] == {"households": len(data.households), **people_fields(people)}


class TestByRegion:
    @pytest.mark.parametrize("region", [REGENCY, DISTRICT])
    async def test_groups_by_the_next_level_listing_every_child(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
        region: str,
    ) -> None:
        body = await get_statistics(
            registry_service, auth_header(**STATS), region=region, by="region"
        )
        length = 6 if region == REGENCY else 10
        children = children_of(region)
        households = Counter(
            h.village_code[:length] for h in data.households if h.village_code.startswith(region)
        )
        people = data.counts(
            lambda village, decile, status: village[:length] if village.startswith(region) else None
        )
        assert body["groups"] == [
            {
                "key": code,
                "name": name,
                "households": households[code],
                **people_fields(people[code]),
            }
            for code, name in sorted(children.items())
        ]
        total = body["total"]
        assert isinstance(total, dict)
        assert total["households"] == sum(households.values())

    async def test_nationally_by_province(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        body = await get_statistics(registry_service, auth_header(**STATS), by="region")
        assert body["region"] is None
        groups = body["groups"]
        assert isinstance(groups, list)
        assert len(groups) == 38
        papua_barat_daya = next(g for g in groups if g["key"] == "96")
        assert papua_barat_daya["name"] == "Papua Barat Daya"
        # Other tests write elsewhere; nobody else writes in 96.
        assert papua_barat_daya["households"] == len(data.households)

    async def test_a_village_has_no_lower_level(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        village = data.households[0].village_code
        response = await registry_service.client.get(
            "/v1/statistics",
            params={"region": village, "by": "region"},
            headers=auth_header(**STATS),
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/no-lower-region-level")
        assert response.json()["field"] == "query.by"

    async def test_a_village_can_be_counted(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        village = data.households[0].village_code
        body = await get_statistics(registry_service, auth_header(**STATS), region=village)
        total = body["total"]
        assert isinstance(total, dict)
        assert total["households"] == sum(h.village_code == village for h in data.households)


class TestAccess:
    async def test_regional_caller_inside_its_region(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        data: Expected,
    ) -> None:
        headers = auth_header(scopes=["registry:stats"], regions=[REGENCY])
        body = await get_statistics(registry_service, headers, region=DISTRICT, by="region")
        assert body["region"] == DISTRICT

    @pytest.mark.parametrize(
        ("regions", "params"),
        [
            ([REGENCY], {"region": "96"}),  # wider than the caller's regency
            ([REGENCY], {}),  # the whole country
            (["1771"], {"region": REGENCY}),  # another regency
            (["1771"], {"region": "17"}),  # a 1771 operator asking for the province
        ],
    )
    async def test_regional_caller_outside_its_region_is_403(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        regions: list[str],
        params: dict[str, str],
    ) -> None:
        response = await registry_service.client.get(
            "/v1/statistics",
            params=params,
            headers=auth_header(scopes=["registry:stats"], regions=regions),
        )
        assert response.status_code == 403
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"].endswith("/region-outside-scope")

    async def test_needs_the_stats_scope(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/statistics",
            params={"region": REGENCY},
            headers=auth_header(scopes=["registry:read", "registry:read:identity"]),
        )
        assert response.status_code == 403
        assert "registry:stats" in response.json()["detail"]

    async def test_needs_a_token(self, registry_service: RunningService) -> None:
        response = await registry_service.client.get("/v1/statistics")
        assert response.status_code == 401


class TestBadInput:
    async def test_unknown_region_is_404(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            "/v1/statistics", params={"region": "9699"}, headers=auth_header(**STATS)
        )
        assert response.status_code == 404
        assert response.json()["type"].endswith("/region-not-found")

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"region": "960"}, "query.region"),
            ({"region": "96x3"}, "query.region"),
            ({"region": "96030100011"}, "query.region"),
            ({"region": REGENCY, "by": "age"}, "query.by"),
        ],
    )
    async def test_malformed_input_is_422_naming_the_field(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        params: dict[str, str],
        field: str,
    ) -> None:
        response = await registry_service.client.get(
            "/v1/statistics", params=params, headers=auth_header(**STATS)
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert field in [error["field"] for error in response.json()["errors"]]
