"""The synthetic household generator: valid identifiers, real villages, calibrated deciles."""

from __future__ import annotations

import csv
import io
import math
import re
import subprocess
import sys
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path

import asyncpg
import pytest

import registry
from registry import models
from registry.demo.generator import (
    AS_OF,
    CSV_COLUMNS,
    SyntheticHousehold,
    decile_shares,
    generate_households,
    national_poverty_rate,
    poverty_rate,
    write_csv,
)
from registry.demo.seed import DEMO_HOUSEHOLDS, DEMO_REGION, DEMO_SEED, seed
from registry.nik import kk_problems, nik_problems
from registry.region.codes import WILAYAH_DIR
from registry.settings import RegistrySettings
from shared.db import sync_url
from shared.testing import DatabaseServer
from shared.testing.plugin import service_root

BRIEF_COLUMNS = (
    "kk,village_code,address,decile,floor,wall,roof,water,sanitation,electricity,house_fit,"
    "nik,full_name,birth_date,sex,relationship,status,death_date,disability,education,occupation"
)


@cache
def codes(filename: str) -> frozenset[str]:
    with open(WILAYAH_DIR / filename, newline="", encoding="utf-8") as handle:
        return frozenset(row["code"] for row in csv.DictReader(handle))


@cache
def households(region: str, count: int, seed: int = 7) -> tuple[SyntheticHousehold, ...]:
    return tuple(generate_households(region, count, seed=seed))


def ranked_shares(sample: tuple[SyntheticHousehold, ...]) -> list[float]:
    deciles = Counter(h.decile for h in sample if h.decile is not None)
    ranked = sum(deciles.values())
    return [deciles[d] / ranked for d in range(1, 11)]


class TestIdentifiers:
    def test_every_nik_passes_the_dukcapil_rules(self) -> None:
        for household in households("1771", 3000):
            for person in household.members:
                assert nik_problems(person.nik, birth_date=person.birth_date, sex=person.sex) == []
                assert person.nik[:6] == household.village_code[:6]

    def test_every_kk_passes_the_rules_and_is_issued_after_its_members_births(self) -> None:
        for household in households("1771", 3000):
            assert kk_problems(household.kk, today=AS_OF) == []
            assert household.kk[:6] == household.village_code[:6]
            day, month, year = (int(household.kk[i : i + 2]) for i in (6, 8, 10))
            issued = date(2000 + year, month, day)
            assert issued <= AS_OF
            assert all(issued >= p.birth_date for p in household.members)

    def test_district_codes_are_real(self) -> None:
        districts = codes("districts.csv")
        for household in households("1771", 3000):
            assert household.kk[:6] in districts

    def test_niks_and_kks_are_unique(self) -> None:
        # One district, many people: serials must still never repeat.
        sample = households("177101", 6000)
        niks = [p.nik for h in sample for p in h.members]
        kks = [h.kk for h in sample]
        assert len(set(niks)) == len(niks)
        assert len(set(kks)) == len(kks)
        assert len({p.id for h in sample for p in h.members}) == len(niks)


class TestVillages:
    @pytest.mark.parametrize("region", ["1771", "950603", "17", "1701012001"])
    def test_villages_are_real_and_inside_the_region(self, region: str) -> None:
        villages = codes("villages.csv")
        sample = households(region, 400)
        assert len(sample) == 400
        for household in sample:
            assert household.village_code in villages
            assert household.village_code.startswith(region)

    def test_a_regency_spreads_over_many_villages(self) -> None:
        in_region = {code for code in codes("villages.csv") if code.startswith("1771")}
        used = {h.village_code for h in households("1771", 3000)}
        assert len(used) > 0.9 * len(in_region)

    @pytest.mark.parametrize("region", ["99", "1799", "17x1", "177101999999"])
    def test_unknown_or_malformed_region_is_refused(self, region: str) -> None:
        with pytest.raises(ValueError, match="region|village"):
            next(generate_households(region, 1))


class TestFamilies:
    def test_one_living_head_and_plausible_ages(self) -> None:
        for household in households("1771", 3000):
            heads = [p for p in household.members if p.relationship == "head"]
            assert len(heads) == 1
            head = heads[0]
            assert head.status == "alive"
            assert (AS_OF - head.birth_date).days >= 18 * 365
            for person in household.members:
                if person.relationship == "spouse":
                    assert person.sex != head.sex
                    assert (AS_OF - person.birth_date).days >= 18 * 365
                elif person.relationship == "child":
                    assert person.birth_date > head.birth_date
                elif person.relationship == "parent":
                    assert (person.birth_date - head.birth_date).days < -15 * 365
            assert 1 <= len(household.members) <= 12

    def test_death_date_exactly_for_the_deceased(self) -> None:
        people = [p for h in households("1771", 3000) for p in h.members]
        for person in people:
            assert (person.status == "deceased") == (person.death_date is not None)
            if person.death_date is not None:
                assert person.birth_date <= person.death_date <= AS_OF
        statuses = Counter(p.status for p in people)
        assert statuses["deceased"] > 0
        assert statuses["moved"] > 0
        assert statuses["alive"] > 0.95 * len(people)

    def test_family_shapes_vary(self) -> None:
        sample = households("1771", 3000)
        sizes = Counter(len(h.members) for h in sample)
        relationships = Counter(p.relationship for h in sample for p in h.members)
        assert 0.03 < sizes[1] / len(sample) < 0.2
        assert 3.0 < sum(len(h.members) for h in sample) / len(sample) < 4.5
        assert {"head", "spouse", "child", "parent", "grandchild"} <= set(relationships)

    def test_values_are_those_the_database_accepts(self) -> None:
        for household in households("1771", 1000):
            assert household.floor in models.FLOOR
            assert household.wall in models.WALL
            assert household.roof in models.ROOF
            assert household.water in models.WATER
            assert household.sanitation in models.SANITATION
            assert household.electricity in models.ELECTRICITY
            assert len(household.address) <= 500
            for person in household.members:
                assert person.relationship in models.RELATIONSHIPS
                assert person.status in models.STATUSES
                assert person.disability in models.DISABILITIES
                assert person.education in models.EDUCATION
                assert 1 <= len(person.full_name) <= 200
                assert len(person.occupation) <= 100


class TestDeciles:
    def test_national_rate_is_the_bps_figure(self) -> None:
        assert national_poverty_rate() == pytest.approx(0.0825, abs=0.0001)
        assert poverty_rate("17") == pytest.approx(0.1188)

    @pytest.mark.parametrize("province", ["11", "17", "31", "51", "94"])
    def test_calibration_puts_the_poor_share_below_the_national_line(self, province: str) -> None:
        shares = decile_shares(province)
        assert sum(shares) == pytest.approx(1)
        p = poverty_rate(province)
        # The province's poor (p) fit inside deciles 1..ceil(10p) ...
        assert sum(shares[: math.ceil(10 * p)]) >= p
        # ... and the richer the province, the thinner its low deciles.
        above_average = p > national_poverty_rate()
        assert (shares[0] > 0.1) == above_average
        assert (shares[9] < 0.1) == above_average

    @pytest.mark.parametrize("province", ["94", "17", "51"])
    def test_generated_deciles_follow_the_province_rate(self, province: str) -> None:
        sample = households(province, 20_000)
        observed = ranked_shares(sample)
        for got, expected in zip(observed, decile_shares(province), strict=True):
            assert got == pytest.approx(expected, abs=0.015)
        unranked = sum(h.decile is None for h in sample) / len(sample)
        assert unranked == pytest.approx(0.02, abs=0.01)

    def test_poorer_province_has_more_low_deciles(self) -> None:
        papua_tengah = ranked_shares(households("94", 20_000))
        bali = ranked_shares(households("51", 20_000))
        assert sum(papua_tengah[:3]) > 2 * sum(bali[:3])

    def test_housing_follows_the_decile(self) -> None:
        sample = households("17", 20_000)

        def share(deciles: range, condition: str) -> float:
            group = [h for h in sample if h.decile in deciles]
            hits = {
                "unfit": sum(not h.house_fit for h in group),
                "earth": sum(h.floor == "earth" for h in group),
                "no_latrine": sum(h.sanitation == "none" for h in group),
                "450va": sum(h.electricity == "pln_450" for h in group),
            }[condition]
            return hits / len(group)

        for condition in ("unfit", "earth", "no_latrine", "450va"):
            assert share(range(1, 3), condition) > 2 * share(range(9, 11), condition)


class TestDeterminism:
    def test_same_seed_same_households(self) -> None:
        first = list(generate_households("1771", 300, seed=42))
        second = list(generate_households("1771", 300, seed=42))
        assert first == second
        assert [h.id for h in first] == [h.id for h in second]

    def test_another_seed_other_households(self) -> None:
        first = [h.kk for h in generate_households("1771", 300, seed=1)]
        second = [h.kk for h in generate_households("1771", 300, seed=2)]
        assert first != second


class TestCsv:
    def test_writes_the_brief_format(self) -> None:
        buffer = io.StringIO()
        sample = households("1771", 200)
        rows = write_csv(buffer, sample)
        lines = buffer.getvalue().splitlines()
        assert lines[0] == BRIEF_COLUMNS
        assert ",".join(CSV_COLUMNS) == BRIEF_COLUMNS
        assert rows == sum(len(h.members) for h in sample) == len(lines) - 1
        records = list(csv.DictReader(io.StringIO(buffer.getvalue())))
        for record in records:
            assert record["house_fit"] in ("true", "false")
            assert record["decile"] == "" or 1 <= int(record["decile"]) <= 10
            date.fromisoformat(record["birth_date"])
            assert (record["death_date"] == "") == (record["status"] != "deceased")
        # Household columns repeat on each member's row.
        by_kk: dict[str, set[tuple[str, ...]]] = {}
        for record in records:
            house = tuple(record[c] for c in CSV_COLUMNS[:11])
            by_kk.setdefault(record["kk"], set()).add(house)
        assert all(len(variants) == 1 for variants in by_kk.values())

    def test_command_line(self, tmp_path: Path) -> None:
        out = tmp_path / "x.csv"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "registry.demo.generator",
                "--region",
                "1771",
                "--households",
                "50",
                "--seed",
                "1",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "50 households" in result.stderr
        buffer = io.StringIO()
        write_csv(buffer, generate_households("1771", 50, seed=1))
        assert out.read_text(encoding="utf-8") == buffer.getvalue()


class TestDemoSeed:
    async def test_seeds_the_generated_households_once(
        self, database_server: DatabaseServer, registry_settings: RegistrySettings
    ) -> None:
        # A database of its own: the demo writes 1771, where other tests look people up.
        url = await database_server.migrated_database(
            "registry_demo", service_root(registry.__file__)
        )
        settings = registry_settings.model_copy(update={"database_url": url})
        expected = list(generate_households(DEMO_REGION, DEMO_HOUSEHOLDS, seed=DEMO_SEED))
        people = sum(len(h.members) for h in expected)

        first = await seed(settings)
        assert first.invalid_rows == 0
        again = await seed(settings)
        assert again.changed_rows == 0
        assert again.events_emitted == 0

        conn = await asyncpg.connect(sync_url(url))
        try:
            niks = {r["nik"] for r in await conn.fetch("SELECT nik FROM person")}
            kks = {r["kk"] for r in await conn.fetch("SELECT kk FROM household")}
            events = await conn.fetch(
                "SELECT event_type, count(*) FROM outbox_event GROUP BY event_type"
            )
            traceparents = await conn.fetch(
                "SELECT DISTINCT envelope->>'traceparent' AS tp FROM outbox_event"
            )
        finally:
            await conn.close()
        assert niks == {p.nik for h in expected for p in h.members}
        assert kks == {h.kk for h in expected}
        counts = {r["event_type"]: r["count"] for r in events}
        assert counts["registry.household.registered.v1"] == DEMO_HOUSEHOLDS
        assert counts["registry.person.registered.v1"] == people
        # The seed is one trace of its own: every event carries it, as a request's events do.
        assert len(traceparents) == 1
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", traceparents[0]["tp"] or "")
