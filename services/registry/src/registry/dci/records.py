"""Registry rows as the SPDCI Social Registry's ``Group`` and ``Member`` records.

The rows come from the projection SQL of :mod:`registry.projection`, so they hold only what the
caller's scopes reveal; this module maps whatever is there and leaves out what is not (a key is
absent, never ``null``), exactly like the REST lookups:

========================== ===================================================================
registry                   DCI record
========================== ===================================================================
KK (identity)              Group ``group_identifier`` ``{"identifier_type": "KK", ...}``
household id               Group ``group_identifier`` ``HOUSEHOLD_ID``
NIK (identity)             Member ``member_identifier`` and ``demographic_info.identifier``
person id                  Member ``member_identifier`` ``PERSON_ID``
decile (socioeconomic)     ``poverty_score`` with ``poverty_score_type`` ``DTSEN_DECILE_1_10``
village code + names       Group ``place.address``; Member ``demographic_info.address``
street address (identity)  the same address, prefixed with the street
full name (identity)       ``demographic_info.name.given_name`` (Indonesian names carry no
                           family name, so the whole name is the given name)
sex M/F                    ``male`` / ``female``
relationship to the head   ``relationship_head``; disability -> ``is_disabled``
everything else            ``additional_attributes``: ``{"attribute_name", "attribute_value"}``
                           named like the query attributes (``location``, ``status``, ``YOB``)
========================== ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import RELATIONSHIPS, Region
from registry.region.codes import LEVEL_LENGTHS

__all__ = [
    "GROUP",
    "HOUSEHOLD_ID",
    "KK",
    "MEMBER",
    "NIK",
    "PERSON_ID",
    "POVERTY_SCORE_TYPE",
    "Places",
    "group_record",
    "load_places",
    "member_record",
    "order_members",
]

GROUP = "Group"
MEMBER = "Member"
NIK = "NIK"
KK = "KK"
PERSON_ID = "PERSON_ID"
HOUSEHOLD_ID = "HOUSEHOLD_ID"
# DTSEN ranks households into welfare deciles: 1 is the poorest tenth of the country, 10 the
# richest. The name says the scale so a client does not read 4 as a 0-100 score.
POVERTY_SCORE_TYPE = "DTSEN_DECILE_1_10"
COUNTRY = "IDN"  # ISO 3166-1 alpha-3

_SEX = {"M": "male", "F": "female"}
_HOUSE_CONDITIONS = ("floor", "wall", "roof", "water", "sanitation", "electricity", "house_fit")


@dataclass(frozen=True)
class Place:
    """The names of a village and the district, regency and province it lies in."""

    village_code: str
    village: str | None
    district: str | None
    regency: str | None
    province: str | None

    def address(self, street: str | None = None) -> str:
        parts = (street, self.village, self.district, self.regency, self.province)
        return ", ".join(part for part in parts if part)


Places = Mapping[str, Place]


async def load_places(session: AsyncSession, village_codes: Iterable[str]) -> dict[str, Place]:
    """The region names of each village code, in one query over the ``region`` table."""
    villages = {code for code in village_codes if code}
    prefixes = {code[:length] for code in villages for length in LEVEL_LENGTHS.values()}
    rows = await session.execute(select(Region.code, Region.name).where(Region.code.in_(prefixes)))
    names: dict[str, str] = {row.code: row.name for row in rows}
    return {
        code: Place(
            village_code=code,
            village=names.get(code),
            district=names.get(code[:6]),
            regency=names.get(code[:4]),
            province=names.get(code[:2]),
        )
        for code in villages
    }


def _identifier(kind: str, value: object) -> dict[str, str]:
    return {"@type": "Identifier", "identifier_type": kind, "identifier_value": str(value)}


def _attributes(row: Mapping[str, Any], names: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """``additional_attributes`` of the row's fields that are present (revealed)."""
    return [
        {"attribute_name": attribute, "attribute_value": _json_value(row[field])}
        for field, attribute in names
        if field in row and row[field] is not None
    ]


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _address(place: Place | None, street: str | None) -> dict[str, Any]:
    address: dict[str, Any] = {"@type": "Address"}
    if street:
        address["street_address"] = street
    if place is not None:
        address.update(
            {
                key: value
                for key, value in (
                    ("locality", place.village),
                    ("district", place.district),
                    ("city", place.regency),
                    ("region", place.province),
                )
                if value
            }
        )
    address["country"] = COUNTRY
    return address


def member_record(person: Mapping[str, Any], places: Places) -> dict[str, Any]:
    """A person row (person or member columns of a projection) as a DCI ``Member``."""
    nik = [_identifier(NIK, person["nik"])] if person.get("nik") else []
    demographic: dict[str, Any] = {"@type": "SRPerson"}
    if nik:
        demographic["identifier"] = nik
    if person.get("full_name"):
        demographic["name"] = {"@type": "Name", "given_name": person["full_name"]}
    if "sex" in person:
        demographic["sex"] = _SEX[person["sex"]]
    if person.get("birth_date") is not None:
        demographic["birth_date"] = _json_value(person["birth_date"])
    if "village_code" in person:
        demographic["address"] = _address(places.get(person["village_code"]), person.get("address"))

    record: dict[str, Any] = {
        "@type": MEMBER,
        "member_identifier": [*nik, _identifier(PERSON_ID, person["id"])],
        "demographic_info": demographic,
    }
    if "relationship" in person:
        record["relationship_head"] = person["relationship"]
    if "disability" in person:
        record["is_disabled"] = person["disability"] != "none"
    if person.get("education") is not None:
        record["education_level"] = person["education"]
    if person.get("occupation"):
        record["occupation"] = person["occupation"]
    if person.get("decile") is not None:  # a Member answer carries its household's decile
        record["poverty_score"] = person["decile"]
        record["poverty_score_type"] = POVERTY_SCORE_TYPE
    record["additional_attributes"] = _attributes(
        person,
        (
            ("status", "status"),
            ("death_date", "death_date"),
            ("birth_year", "YOB"),
            ("village_code", "location"),
            ("disability", "disability"),
            ("household_id", HOUSEHOLD_ID),
            ("kk", KK),
            *((name, name) for name in _HOUSE_CONDITIONS),
            ("version", "version"),
        ),
    )
    return record


def order_members(members: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Head first, then by relationship and age, as the REST household answer orders them."""
    rank = {relationship: index for index, relationship in enumerate(RELATIONSHIPS)}
    return sorted(
        members,
        key=lambda member: (
            rank.get(member.get("relationship", ""), len(rank)),
            member.get("birth_year") or 0,
            member["id"],
        ),
    )


def group_record(
    household: Mapping[str, Any], members: Sequence[Mapping[str, Any]], places: Places
) -> dict[str, Any]:
    """A household row and its visible member rows as a DCI ``Group``.

    ``group_size`` counts the living members the caller may see, the same count the
    ``group_size`` query attribute filters on, so neither reveals members outside its regions.
    """
    member_records = [member_record(member, places) for member in members]
    identifiers = [_identifier(KK, household["kk"])] if household.get("kk") else []
    record: dict[str, Any] = {
        "@type": GROUP,
        "group_identifier": [*identifiers, _identifier(HOUSEHOLD_ID, household["id"])],
        "group_type": "family",
    }
    place = places.get(household["village_code"])
    record["place"] = {
        "@type": "Place",
        "address": place.address(household.get("address"))
        if place
        else household.get("address", ""),
    }
    if household.get("decile") is not None:
        record["poverty_score"] = household["decile"]
        record["poverty_score_type"] = POVERTY_SCORE_TYPE
    record["group_size"] = sum(1 for member in members if member.get("status") == "alive")
    heads = [
        member_record(member, places)
        for member in members
        if member.get("relationship") == "head" and member.get("status") == "alive"
    ]
    if heads:
        record["group_head_info"] = heads[0]
    record["member_list"] = member_records
    record["additional_attributes"] = _attributes(
        household,
        (
            ("status", "status"),
            ("village_code", "location"),
            *((name, name) for name in _HOUSE_CONDITIONS),
            ("version", "version"),
        ),
    )
    return record
