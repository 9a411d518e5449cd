"""Registry data for the DCI search and notify tests, written through the registry's REST API.

The DCI tests work in Kalimantan Timur (Kota Balikpapan 6471, Kota Samarinda 6472), where no
other test writes, and every test takes villages of its own (:func:`fresh_village`), so a
predicate such as ``poverty_score < 5`` scoped to the test's villages sees only its own rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

from registry.region.codes import villages_in
from shared.auth import Caller
from shared.testing import RunningService, sequence_number

from ..factories import make_nik, some_date, unique_serial

Headers = Callable[..., dict[str, str]]

BALIKPAPAN = "6471"
SAMARINDA = "6472"
READ = "registry:read"
IDENTITY = "registry:read:identity"
SOCIOECONOMIC = "registry:read:socioeconomic"
ALL_READ = frozenset({READ, IDENTITY, SOCIOECONOMIC})


def _villages(regency: str) -> Iterator[tuple[str, str]]:
    # Every other village first: neighbours in code order are not used one after the other.
    villages = villages_in(regency)
    return iter(villages[::2] + villages[1::2])


_FRESH = {regency: _villages(regency) for regency in (BALIKPAPAN, SAMARINDA)}


def fresh_village(regency: str = BALIKPAPAN) -> tuple[str, str]:
    """(code, name) of a village no other test of this session uses."""
    return next(_FRESH[regency])


def caller(
    *, scopes: frozenset[str] = ALL_READ, regions: tuple[str, ...] = (), agency: str = "BPJS"
) -> Caller:
    return Caller(subject="dci-tester", agency=agency, scopes=scopes, regions=regions)


def make_kk(village: str) -> str:
    issued = some_date(sequence_number(), first=date(2010, 1, 1), days=5000)
    return f"{village[:6]}{issued:%d%m%y}{unique_serial():04d}"


async def create_household(
    service: RunningService,
    auth_header: Headers,
    *,
    village: str,
    decile: int | None = 2,
    address: str = "Jl. Mulawarman No. 7",
) -> dict[str, Any]:
    body = {
        "kk": make_kk(village),
        "village_code": village,
        "address": address,
        "decile": decile,
        "floor": "cement",
        "roof": "zinc",
        "house_fit": False,
    }
    response = await service.client.post("/v1/households", json=body, headers=auth_header())
    assert response.status_code == 201, response.text
    return {**body, "id": response.json()["id"]}


async def add_person(
    service: RunningService,
    auth_header: Headers,
    *,
    village: str,
    household: dict[str, Any] | None = None,
    relationship: str = "other",
    birth_date: date | None = None,
    sex: str = "F",
    full_name: str = "Warga Uji",
    disability: str = "none",
) -> dict[str, Any]:
    born = birth_date or some_date(sequence_number(), first=date(1950, 1, 1), days=24_000)
    body: dict[str, Any] = {
        "nik": make_nik(birth_date=born, sex=sex, district=village[:6], serial=unique_serial()),
        "full_name": full_name,
        "birth_date": born.isoformat(),
        "sex": sex,
        "village_code": village,
        "relationship": relationship,
        "disability": disability,
    }
    if household is not None:
        body["household_id"] = household["id"]
    response = await service.client.post("/v1/persons", json=body, headers=auth_header())
    assert response.status_code == 201, response.text
    return {**body, "id": response.json()["id"]}


async def family(
    service: RunningService,
    auth_header: Headers,
    *,
    village: str,
    decile: int | None = 2,
    children: int = 1,
) -> dict[str, Any]:
    """A household with a head (born 1980, M), a spouse (1983, F) and ``children`` (aged 6 this
    year, then 5, 4...: girls and boys in turn, a boy first)."""
    household = await create_household(service, auth_header, village=village, decile=decile)
    head = await add_person(
        service,
        auth_header,
        village=village,
        household=household,
        relationship="head",
        birth_date=date(1980, 3, 15),
        sex="M",
        full_name="Budi Santoso",
    )
    spouse = await add_person(
        service,
        auth_header,
        village=village,
        household=household,
        relationship="spouse",
        birth_date=date(1983, 7, 15),
        sex="F",
        full_name="Sri Wahyuni",
    )
    kids = [
        await add_person(
            service,
            auth_header,
            village=village,
            household=household,
            relationship="child",
            birth_date=date(date.today().year - 6 + index, 1, 15),
            sex="F" if index % 2 else "M",
            full_name=f"Anak {index + 1}",
        )
        for index in range(children)
    ]
    return {**household, "head": head, "spouse": spouse, "children": kids}


def item(
    query: Any,
    *,
    query_type: str,
    reference_id: str | None = None,
    **criteria: Any,
) -> dict[str, Any]:
    """One search_request item."""
    return {
        "reference_id": reference_id or uuid.uuid4().hex,
        "timestamp": "2026-11-25T10:00:00Z",
        "search_criteria": {
            "version": "1.0.0",
            "reg_type": "ns:org:RegistryType:Social",
            "query_type": query_type,
            "query": query,
            **criteria,
        },
        "locale": "eng",
    }


def predicate(*conditions: tuple[str, str, Any]) -> list[dict[str, Any]]:
    """A predicate query of conditions that must all hold."""
    return [
        {
            "seq_num": index + 1,
            "expression1": {"attribute_name": name, "operator": op, "attribute_value": value},
        }
        for index, (name, op, value) in enumerate(conditions)
    ]


def identifiers(record: dict[str, Any], key: str) -> dict[str, str]:
    """identifier_type -> identifier_value of a record's ``group_identifier`` etc."""
    return {entry["identifier_type"]: entry["identifier_value"] for entry in record.get(key, [])}
