"""Synthetic DTSEN households for any region: demo data and benchmark load.

Every household is a family card (KK) in a real village of the region, with a head, often a
spouse, 0-5 children of plausible ages, sometimes a parent of the head (three generations
sometimes), and a few single-person households. Identifiers follow Dukcapil's rules:

* NIK = the village's district code (6) + birth date DDMMYY, 40 added to the day for women (6)
  + a serial (4) that is unique per district and birth-date part, from 0001;
* KK = the village's district code (6) + issue date DDMMYY (6) + a serial (4) unique per
  district and issue date. A card is (re)issued after its youngest member's birth.

**Decile calibration.** DTSEN deciles are *national*: decile 1 is the poorest 10 % of the
country. BPS's poverty rate ``p`` of a province (Susenas, ``data/bps_poverty_by_province.csv``,
latest period 2025-09) is the share of its people below the poverty line; nationally that share
is ``p_nat`` = 8.25 % (the population-weighted mean of the file, equal to BPS's national
figure), so the line sits at the national welfare percentile 0.0825, inside decile 1. A province
with ``p`` above ``p_nat`` has more than its share of households below every national percentile.
We model the province's cumulative share below national percentile ``q`` by shifting the national
distribution in log-odds::

    logit F_p(q) = logit q + (logit p - logit p_nat)

so ``F_p(p_nat) = p`` exactly (the province's poor are all below the national line), ``F_p`` is
the identity for an average province, and the shift thins out smoothly towards the top deciles
(Papua Tengah, p = 29.45 %: 34 % of households in decile 1, 2 % in decile 10; Bali, p = 3.42 %:
4 % in decile 1, 22 % in decile 10). The share of decile ``d`` is ``F_p(d/10) - F_p((d-1)/10)``;
consequently the province's poor share ``p`` always fits inside deciles ``1..ceil(10 p)``. The
rate is a share of people applied here to households (poor households are larger, so the share
of *people* in the low deciles comes out slightly higher than ``p``). A small share of households
(``unranked_share``, 2 % by default) has no decile yet, as newly registered cards in DTSEN do.

**Housing** (floor, wall, roof, water, sanitation, electricity, fitness) is drawn from tables per
welfare band (deciles 1-2, 3-4, 5-6, 7-8, 9-10), so conditions correlate with the decile:
earth floors, bamboo walls, no private latrine, 450 VA PLN connections and unfit houses (RTLH)
concentrate in the low deciles. Family size, education and occupation follow the band too;
urban villages (*kelurahan*, code digit 7 = 1) get streets, rural ones (*desa*) hamlets.

Everything is deterministic by ``seed``. Households are generated lazily, district after
district (villages in code order), and only the current district's serial counters are held, so
millions of rows stream in constant memory::

    uv run python -m registry.demo.generator --region 1771 --households 1000 --seed 1 \
        --out /tmp/x.csv
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO

from registry.reconciliation.staging import COLUMNS
from registry.reconciliation.staging import HOUSEHOLD_COLUMNS as IMPORTED_HOUSEHOLD_COLUMNS
from registry.reconciliation.validation import PERSON_FIELDS
from registry.region.codes import villages_in

__all__ = [
    "AS_OF",
    "CSV_COLUMNS",
    "HOUSEHOLD_COLUMNS",
    "PERIOD",
    "PERSON_COLUMNS",
    "SyntheticHousehold",
    "SyntheticPerson",
    "csv_rows",
    "decile_shares",
    "generate_households",
    "household_record",
    "national_poverty_rate",
    "person_records",
    "poverty_rate",
    "write_csv",
]

POVERTY_CSV = Path(__file__).parent.parent / "data" / "bps_poverty_by_province.csv"
PERIOD = "2025-09"
AS_OF = date(2025, 9, 30)
# The file format is the reconciliation import's: written here, read there.
CSV_COLUMNS = COLUMNS


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    id: uuid.UUID
    nik: str
    full_name: str
    birth_date: date
    sex: str
    relationship: str
    status: str = "alive"
    death_date: date | None = None
    disability: str = "none"
    education: str = "none"
    occupation: str = ""


@dataclass(frozen=True, slots=True)
class SyntheticHousehold:
    id: uuid.UUID
    kk: str
    village_code: str
    address: str
    decile: int | None
    floor: str
    wall: str
    roof: str
    water: str
    sanitation: str
    electricity: str
    house_fit: bool
    members: tuple[SyntheticPerson, ...]


# ---------------------------------------------------------------------------- calibration


@lru_cache(maxsize=8)
def _poverty_table(period: str) -> dict[str, tuple[float, float | None]]:
    """province -> (rate as a fraction, poor people in thousands or None)."""
    table: dict[str, tuple[float, float | None]] = {}
    with open(POVERTY_CSV, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["period"] == period:
                poor = row["poor_people_thousands"]
                table[row["province_code"]] = (
                    float(row["poverty_rate_percent"]) / 100,
                    float(poor) if poor else None,
                )
    if not table:
        raise ValueError(f"no BPS poverty figures for period {period}")
    return table


def poverty_rate(province: str, period: str = PERIOD) -> float:
    """BPS poverty rate (P0) of ``province`` as a fraction, e.g. 0.1188 for Bengkulu 2025-09."""
    try:
        return _poverty_table(period)[province][0]
    except KeyError:
        raise ValueError(f"no BPS poverty rate for province {province!r} in {period}") from None


def national_poverty_rate(period: str = PERIOD) -> float:
    """Poor people over population (population = poor / rate per province): 8.25 % in 2025-09."""
    rows = [(rate, poor) for rate, poor in _poverty_table(period).values() if poor is not None]
    return sum(poor for _, poor in rows) / sum(poor / rate for rate, poor in rows)


def _logit(x: float) -> float:
    return math.log(x / (1 - x))


def _expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@lru_cache(maxsize=64)
def decile_shares(province: str, period: str = PERIOD) -> tuple[float, ...]:
    """Expected share of the province's ranked households in national deciles 1..10."""
    shift = _logit(poverty_rate(province, period)) - _logit(national_poverty_rate(period))

    def below(q: float) -> float:
        if q <= 0 or q >= 1:
            return q
        return _expit(_logit(q) + shift)

    return tuple(below(d / 10) - below((d - 1) / 10) for d in range(1, 11))


# ---------------------------------------------------------------------------- tables

FLOOR = ("earth", "bamboo", "wood", "cement", "ceramic", "other")
WALL = ("bamboo", "wood", "plaster", "brick", "other")
ROOF = ("thatch", "zinc", "asbestos", "tile", "concrete", "other")
WATER = ("unprotected", "protected_well", "rain", "piped", "bottled", "other")
SANITATION = ("none", "shared", "private")
ELECTRICITY = ("none", "non_pln", "pln_450", "pln_900", "pln_over_900")
EDUCATION = ("none", "sd", "smp", "sma", "diploma", "bachelor", "postgraduate")
DISABILITY = ("physical", "sensory", "intellectual", "mental", "multiple")

# Weights per welfare band: deciles 1-2, 3-4, 5-6, 7-8, 9-10.
FLOOR_W = (
    (22, 5, 25, 38, 8, 2),
    (10, 3, 20, 47, 18, 2),
    (4, 2, 12, 42, 38, 2),
    (2, 1, 7, 30, 59, 1),
    (1, 0, 3, 15, 80, 1),
)
WALL_W = (
    (20, 33, 17, 28, 2),
    (10, 27, 23, 38, 2),
    (5, 18, 27, 48, 2),
    (2, 10, 28, 59, 1),
    (1, 4, 25, 69, 1),
)
ROOF_W = (
    (12, 60, 10, 15, 1, 2),
    (6, 58, 12, 21, 1, 2),
    (3, 52, 13, 28, 2, 2),
    (1, 45, 12, 35, 6, 1),
    (0, 35, 8, 40, 16, 1),
)
WATER_W = (
    (25, 35, 8, 20, 10, 2),
    (15, 35, 6, 26, 16, 2),
    (8, 30, 4, 30, 26, 2),
    (4, 22, 2, 32, 39, 1),
    (2, 12, 1, 30, 54, 1),
)
SANITATION_W = ((25, 25, 50), (12, 20, 68), (6, 12, 82), (3, 7, 90), (1, 3, 96))
ELECTRICITY_W = (
    (4, 5, 60, 28, 3),
    (2, 3, 42, 45, 8),
    (1, 2, 25, 55, 17),
    (0.5, 1, 12, 50, 36.5),
    (0, 1, 4, 30, 65),
)
UNFIT_P = (0.40, 0.25, 0.13, 0.06, 0.02)
CHILDREN_W = (
    (10, 15, 24, 24, 16, 11),
    (11, 18, 27, 23, 13, 8),
    (12, 21, 31, 21, 10, 5),
    (14, 24, 33, 19, 7, 3),
    (16, 27, 35, 16, 4, 2),
)
ADULT_EDUCATION_W = (
    (14, 44, 22, 18, 1, 1, 0),
    (9, 36, 24, 26, 2, 3, 0),
    (5, 26, 23, 34, 4, 8, 0),
    (3, 16, 18, 40, 7, 15, 1),
    (1, 7, 10, 38, 10, 30, 4),
)

# Occupations as Dukcapil writes them on the KTP, by welfare (low, middle, high) and setting.
_RURAL_JOBS = (
    {
        "Petani/Pekebun": 32,
        "Buruh Tani/Perkebunan": 22,
        "Buruh Harian Lepas": 24,
        "Nelayan/Perikanan": 8,
        "Pedagang": 5,
        "Tukang Kayu": 3,
        "Wiraswasta": 4,
        "Belum/Tidak Bekerja": 2,
    },
    {
        "Petani/Pekebun": 38,
        "Buruh Harian Lepas": 14,
        "Pedagang": 12,
        "Wiraswasta": 14,
        "Karyawan Swasta": 10,
        "Nelayan/Perikanan": 6,
        "Sopir": 4,
        "Guru": 2,
    },
    {
        "Petani/Pekebun": 25,
        "Wiraswasta": 22,
        "Pegawai Negeri Sipil": 15,
        "Karyawan Swasta": 15,
        "Pedagang": 12,
        "Guru": 8,
        "Perangkat Desa": 3,
    },
)
_URBAN_JOBS = (
    {
        "Buruh Harian Lepas": 34,
        "Pedagang": 18,
        "Sopir": 10,
        "Tukang Batu": 8,
        "Karyawan Swasta": 10,
        "Wiraswasta": 12,
        "Belum/Tidak Bekerja": 8,
    },
    {
        "Karyawan Swasta": 32,
        "Wiraswasta": 24,
        "Pedagang": 16,
        "Buruh Harian Lepas": 10,
        "Sopir": 6,
        "Pegawai Negeri Sipil": 6,
        "Guru": 6,
    },
    {
        "Karyawan Swasta": 30,
        "Pegawai Negeri Sipil": 20,
        "Wiraswasta": 22,
        "Karyawan BUMN": 8,
        "Guru": 8,
        "Dokter": 2,
        "TNI/Polri": 6,
        "Dosen": 4,
    },
)

MALE_NAMES = (
    "Agus", "Ahmad", "Andi", "Arif", "Bambang", "Bayu", "Budi", "Dedi", "Dimas", "Dodi",
    "Eko", "Fajar", "Fikri", "Gilang", "Hadi", "Hendra", "Heru", "Ilham", "Imam", "Irfan",
    "Joko", "Kurniawan", "Lukman", "Made", "Muhammad", "Nanda", "Nur", "Putu", "Rahmat",
    "Rizki", "Rudi", "Sigit", "Slamet", "Sugeng", "Suparman", "Supriyadi", "Syahrul",
    "Taufik", "Teguh", "Udin", "Wahyu", "Wayan", "Yanto", "Yohanes", "Yusuf", "Zainal",
)  # fmt: skip
FEMALE_NAMES = (
    "Aisyah", "Ani", "Ayu", "Dewi", "Dian", "Eka", "Endang", "Fitri", "Indah", "Intan",
    "Kartini", "Lestari", "Lina", "Maria", "Mega", "Nining", "Nur", "Nurhayati", "Putri",
    "Rahayu", "Ratna", "Rina", "Rini", "Sari", "Siti", "Sri", "Suryani", "Susanti", "Tuti",
    "Wahyuni", "Wulan", "Yanti", "Yuli", "Yulia", "Zahra",
)  # fmt: skip
SECOND_NAMES = (
    "Aditya", "Hidayat", "Kusuma", "Lestari", "Nugroho", "Pratama", "Purnama", "Rahman",
    "Saputra", "Saputri", "Setiawan", "Susanto", "Wati", "Wibowo", "Wijaya", "Yulianto",
)  # fmt: skip
# Family names passed from father to children, where that is the custom.
FAMILY_NAMES = {
    "12": ("Siregar", "Nasution", "Harahap", "Simanjuntak", "Sitompul", "Panjaitan",
           "Hutagalung", "Lubis", "Situmorang", "Sinaga", "Simatupang", "Tambunan"),
    "71": ("Wenas", "Sondakh", "Rumengan", "Kaunang", "Mandagi", "Tumbelaka", "Lumempouw"),
    "81": ("Latuconsina", "Tuasikal", "Pattiasina", "Sahetapy", "Latumahina", "Wattimena"),
    "91": ("Rumbiak", "Mandowen", "Kambu", "Wonda", "Yoku", "Ohee"),
    "92": ("Mandacan", "Kambu", "Iba", "Rumbekwan", "Ullo"),
    "93": ("Gebze", "Mahuze", "Kaize", "Ndiken", "Balagaize"),
    "94": ("Kogoya", "Murib", "Magai", "Tabuni", "Wonda", "Pigai"),
    "95": ("Wenda", "Tabuni", "Wanimbo", "Yikwa", "Kogoya", "Lokbere"),
    "96": ("Kambu", "Momot", "Malak", "Sagrim", "Kalami"),
}  # fmt: skip
STREETS = (
    "Merdeka", "Sudirman", "Ahmad Yani", "Diponegoro", "Gatot Subroto", "Pahlawan",
    "Flamboyan", "Melati", "Kenanga", "Mawar", "Cendana", "Veteran", "Kartini", "Hasanuddin",
    "Imam Bonjol", "Teuku Umar", "Pattimura", "Cut Nyak Dien", "Soekarno-Hatta", "Garuda",
    "Nusa Indah", "Cempaka", "Salak", "Kapuas", "Sumatera",
)  # fmt: skip
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII")


def _cumulative(weights: Iterable[float]) -> tuple[float, ...]:
    total = 0.0
    out = []
    for weight in weights:
        total += weight
        out.append(total)
    return tuple(out)


def _cum_table(table: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(_cumulative(row) for row in table)


_FLOOR_C = _cum_table(FLOOR_W)
_WALL_C = _cum_table(WALL_W)
_ROOF_C = _cum_table(ROOF_W)
_WATER_C = _cum_table(WATER_W)
_SANITATION_C = _cum_table(SANITATION_W)
_ELECTRICITY_C = _cum_table(ELECTRICITY_W)
_CHILDREN_C = _cum_table(CHILDREN_W)
_EDUCATION_C = _cum_table(ADULT_EDUCATION_W)
_JOBS = {
    urban: tuple((tuple(jobs), _cumulative(jobs.values())) for jobs in table)
    for urban, table in ((False, _RURAL_JOBS), (True, _URBAN_JOBS))
}


# ---------------------------------------------------------------------------- generation


class _Serials:
    """Serial counters of one district: NIK per birth-date part, KK per issue date."""

    def __init__(self, district: str) -> None:
        self.district = district
        self._next: dict[str, int] = {}

    def take(self, key: str) -> str:
        serial = self._next.get(key, 0) + 1
        if serial > 9999:
            raise ValueError(
                f"more than 9999 identifiers for district {self.district} and date part "
                f"{key[1:]}: generate fewer households per district"
            )
        self._next[key] = serial
        return f"{serial:04d}"


class _Builder:
    def __init__(self, rng: random.Random, as_of: date) -> None:
        self.rng = rng
        self.as_of = as_of

    def pick(self, options: Sequence[str], cum: Sequence[float]) -> str:
        return self.rng.choices(options, cum_weights=cum)[0]

    def birth_date(self, age: float) -> date:
        return self.as_of - timedelta(days=int(age * 365.2425))

    def nik(self, serials: _Serials, born: date, sex: str) -> str:
        day = born.day + (40 if sex == "F" else 0)
        part = f"{day:02d}{born:%m%y}"
        return f"{serials.district}{part}{serials.take('N' + part)}"

    def kk(self, serials: _Serials, issued: date) -> str:
        part = f"{issued:%d%m%y}"
        return f"{serials.district}{part}{serials.take('K' + part)}"

    def given_name(self, sex: str) -> str:
        names = MALE_NAMES if sex == "M" else FEMALE_NAMES
        first = self.rng.choice(names)
        if self.rng.random() < 0.55:
            second = self.rng.choice(SECOND_NAMES)
            if second != first:
                return f"{first} {second}"
        return first

    def education(self, age: float, band: int) -> str:
        rng = self.rng
        if age < 7:
            return "none"
        if age < 13:
            return "sd"
        if age < 16:
            return "sd" if band == 0 and rng.random() < 0.15 else "smp"
        if age < 19:
            return "smp" if rng.random() < (0.3 if band == 0 else 0.12) else "sma"
        level = EDUCATION.index(self.pick(EDUCATION, _EDUCATION_C[band]))
        if age >= 60 and level > 0 and rng.random() < 0.5:
            level -= 1
        return EDUCATION[level]

    def occupation(self, age: float, sex: str, band: int, urban: bool, role: str) -> str:
        rng = self.rng
        if age < 5:
            return "Belum/Tidak Bekerja"
        if age < 19 or (age < 23 and rng.random() < (0.15 + 0.1 * band)):
            return "Pelajar/Mahasiswa"
        if age >= 65:
            return "Pensiunan" if band >= 3 and rng.random() < 0.5 else "Belum/Tidak Bekerja"
        if sex == "F" and role != "head" and rng.random() < 0.55:
            return "Mengurus Rumah Tangga"
        jobs, cum = _JOBS[urban][(0, 0, 1, 2, 2)[band]]
        return self.pick(jobs, cum)

    def disability(self, age: float, band: int) -> str:
        chance = 0.015 + (0.08 if age >= 65 else 0) + (0.01 if band == 0 else 0)
        if self.rng.random() >= chance:
            return "none"
        return self.rng.choices(DISABILITY, weights=(40, 25, 10, 10, 15))[0]


def _band(decile: int | None, rng: random.Random) -> int:
    return (decile - 1) // 2 if decile is not None else rng.randrange(5)


def _allocate(count: int, villages: int, rng: random.Random) -> list[int]:
    """Households per village: uneven (log-normal sizes), summing exactly to ``count``."""
    weights = [rng.lognormvariate(0, 0.6) for _ in range(villages)]
    total = sum(weights)
    raw = [count * w / total for w in weights]
    counts = [int(r) for r in raw]
    by_remainder = sorted(range(villages), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return counts


def _decile_cum(province: str, period: str) -> tuple[float, ...]:
    return _cumulative(decile_shares(province, period))


def generate_households(
    region: str,
    households: int,
    *,
    seed: int = 0,
    period: str = PERIOD,
    as_of: date = AS_OF,
    unranked_share: float = 0.02,
) -> Iterator[SyntheticHousehold]:
    """``households`` synthetic family cards in the real villages under ``region`` (a prefix).

    Lazy and deterministic: the same arguments give the same households, NIKs, KKs and ids.
    """
    if not region.isdigit() and region != "":
        raise ValueError(f"region must be a code prefix of digits, not {region!r}")
    if households < 0:
        raise ValueError("households must not be negative")
    villages = villages_in(region)
    if not villages:
        raise ValueError(f"no village code starts with {region!r}")
    rng = random.Random(seed)
    build = _Builder(rng, as_of)
    counts = _allocate(households, len(villages), rng)
    serials = _Serials("")
    for (village, village_name), count in zip(villages, counts, strict=True):
        if village[:6] != serials.district:
            serials = _Serials(village[:6])
        deciles = _decile_cum(village[:2], period)
        urban = village[6] == "1"
        for _ in range(count):
            decile: int | None = None
            if rng.random() >= unranked_share:
                decile = rng.choices(range(1, 11), cum_weights=deciles)[0]
            yield _household(build, serials, village, village_name, urban, decile)


def _household(
    build: _Builder,
    serials: _Serials,
    village: str,
    village_name: str,
    urban: bool,
    decile: int | None,
) -> SyntheticHousehold:
    rng = build.rng
    band = _band(decile, rng)
    family = FAMILY_NAMES.get(village[:2])
    surname = rng.choice(family) if family else None
    # (relationship, sex, age in years, status) of each member, head first
    plan: list[tuple[str, str, float, str]] = []
    if rng.random() < 0.06:  # one person: a young adult or an elderly widow(er)
        age = rng.uniform(19, 32) if rng.random() < 0.5 else rng.uniform(60, 88)
        plan.append(("head", rng.choice("MF"), age, "alive"))
    else:
        head_sex = "M" if rng.random() < 0.86 else "F"
        head_age = rng.triangular(21, 82, 38)
        plan.append(("head", head_sex, head_age, "alive"))
        # The children's mother: the wife, the female head, or (widower) an absent one.
        mother_age = head_age - rng.uniform(-2, 8) if head_sex == "M" else head_age
        if head_sex == "M" and rng.random() < 0.94:
            mother_age = max(18.0, mother_age)
            plan.append(("spouse", "F", mother_age, "alive"))
        elif head_sex == "F" and rng.random() < 0.12:
            plan.append(("spouse", "M", head_age + rng.uniform(0, 6), "alive"))
        children = int(build.pick("012345", _CHILDREN_C[band]))
        if children:
            at_birth = rng.uniform(19, 28)
            for _ in range(children):
                age = mother_age - at_birth
                if age < 0 or at_birth > 44:
                    break
                if age <= 34:  # older children usually hold their own card
                    moved = age >= 19 and rng.random() < 0.12
                    plan.append(("child", rng.choice("MF"), age, "moved" if moved else "alive"))
                at_birth += rng.uniform(1.2, 5)
        adult_children = [p for p in plan if p[0] == "child" and p[2] >= 21 and p[3] == "alive"]
        if head_age >= 45 and adult_children and rng.random() < 0.25:
            _, child_sex, child_age, _ = adult_children[0]
            plan.append(("child_in_law", "F" if child_sex == "M" else "M", child_age, "alive"))
            for _ in range(rng.randint(1, 2)):
                plan.append(
                    ("grandchild", rng.choice("MF"), rng.uniform(0, child_age - 20), "alive")
                )
        if head_age <= 62 and rng.random() < 0.12:
            parent_age = min(head_age + rng.uniform(20, 34), 96.0)
            status = "deceased" if rng.random() < 0.1 else "alive"
            plan.append(("parent", "F" if rng.random() < 0.7 else "M", parent_age, status))

    members = []
    head_born: date | None = None
    last_birth = date(1900, 1, 1)
    for relationship, sex, age, status in plan:
        born = build.birth_date(age)
        last_birth = max(last_birth, born)
        if relationship == "head":
            head_born = born
        death = None
        if status == "deceased":
            death = build.as_of - timedelta(days=rng.randint(30, 4 * 365))
        name = build.given_name(sex)
        # The family name runs in the male line: head, children, grandchildren, head's father.
        if surname and (
            relationship in ("head", "child", "grandchild")
            or (relationship == "parent" and sex == "M")
        ):
            name = f"{name} {surname}"
        members.append(
            SyntheticPerson(
                id=uuid.UUID(int=rng.getrandbits(128), version=4),
                nik=build.nik(serials, born, sex),
                full_name=name,
                birth_date=born,
                sex=sex,
                relationship=relationship,
                status=status,
                death_date=death,
                disability=build.disability(age, band),
                education=build.education(age, band),
                occupation=build.occupation(age, sex, band, urban, relationship),
            )
        )
    assert head_born is not None
    # The card is (re)issued after the youngest member's birth and the head's 17th birthday.
    earliest = max(last_birth, head_born + timedelta(days=17 * 366), date(2005, 1, 1))
    span = max((build.as_of - earliest).days, 0)
    issued = earliest + timedelta(days=rng.randint(0, span))

    floor = build.pick(FLOOR, _FLOOR_C[band])
    wall = build.pick(WALL, _WALL_C[band])
    roof = build.pick(ROOF, _ROOF_C[band])
    water = build.pick(WATER, _WATER_C[band])
    if urban and water in ("unprotected", "rain") and rng.random() < 0.6:
        water = "piped"
    unfit = rng.random() < UNFIT_P[band] or (
        floor == "earth" and (wall == "bamboo" or roof == "thatch")
    )
    if urban:
        address = (
            f"Jl. {rng.choice(STREETS)} No. {rng.randint(1, 180)}, "
            f"RT {rng.randint(1, 25):03d}/RW {rng.randint(1, 8):03d}, Kel. {village_name}"
        )
    else:
        address = (
            f"Dusun {rng.choice(ROMAN)}, RT {rng.randint(1, 12):03d}/RW {rng.randint(1, 5):03d}, "
            f"Desa {village_name}"
        )
    return SyntheticHousehold(
        id=uuid.UUID(int=rng.getrandbits(128), version=4),
        kk=build.kk(serials, issued),
        village_code=village,
        address=address,
        decile=decile,
        floor=floor,
        wall=wall,
        roof=roof,
        water=water,
        sanitation=build.pick(SANITATION, _SANITATION_C[band]),
        electricity=build.pick(ELECTRICITY, _ELECTRICITY_C[band]),
        house_fit=not unfit,
        members=tuple(members),
    )


# ---------------------------------------------------------------------------- table rows

# Columns of the household and person tables that the generator fills, in record order (for
# COPY or INSERT straight into the registry; the rest take their server defaults).
HOUSEHOLD_COLUMNS = ("id", "kk", *IMPORTED_HOUSEHOLD_COLUMNS)
PERSON_COLUMNS = ("id", "nik", *PERSON_FIELDS)


def household_record(h: SyntheticHousehold) -> tuple[object, ...]:
    return (
        h.id,
        h.kk,
        h.village_code,
        h.address,
        h.decile,
        h.floor,
        h.wall,
        h.roof,
        h.water,
        h.sanitation,
        h.electricity,
        h.house_fit,
    )


def person_records(h: SyntheticHousehold) -> list[tuple[object, ...]]:
    return [
        (
            p.id,
            p.nik,
            p.full_name,
            p.birth_date,
            p.sex,
            h.village_code,
            h.id,
            p.relationship,
            p.status,
            p.death_date,
            p.disability,
            p.education,
            p.occupation,
        )
        for p in h.members
    ]


# ---------------------------------------------------------------------------- CSV


def csv_rows(households: Iterable[SyntheticHousehold]) -> Iterator[list[str]]:
    """One row per person in the DTSEN snapshot format (household columns repeated)."""
    for h in households:
        house = [
            h.kk,
            h.village_code,
            h.address,
            "" if h.decile is None else str(h.decile),
            h.floor,
            h.wall,
            h.roof,
            h.water,
            h.sanitation,
            h.electricity,
            "true" if h.house_fit else "false",
        ]
        for p in h.members:
            yield [
                *house,
                p.nik,
                p.full_name,
                p.birth_date.isoformat(),
                p.sex,
                p.relationship,
                p.status,
                p.death_date.isoformat() if p.death_date else "",
                p.disability,
                p.education,
                p.occupation,
            ]


def write_csv(target: str | Path | IO[str], households: Iterable[SyntheticHousehold]) -> int:
    """Write the households as a DTSEN CSV (header + one row per person); returns the rows."""
    if isinstance(target, str | Path):
        with open(target, "w", newline="", encoding="utf-8") as handle:
            return write_csv(handle, households)
    writer = csv.writer(target, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    for row in csv_rows(households):
        writer.writerow(row)
        rows += 1
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m registry.demo.generator",
        description="Write synthetic DTSEN households of a region as CSV.",
    )
    parser.add_argument("--region", required=True, help="region code prefix, e.g. 1771")
    parser.add_argument("--households", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="-", help="CSV file, or - for standard output")
    args = parser.parse_args(argv)
    households = generate_households(args.region, args.households, seed=args.seed)
    target = sys.stdout if args.out == "-" else args.out
    rows = write_csv(target, households)
    print(f"{args.households} households, {rows} people", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    main()
