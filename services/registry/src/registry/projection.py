"""Which fields of a person or household each scope reveals (data minimisation by scope).

Every lookup needs ``registry:read``; the two finer scopes add fields to it. A caller gets the
union of the fields of the scopes its token holds, and fields outside that union are *absent*
from the JSON (not ``null``): a nutrition agency's answer does not even say that a name exists.

=========================== ====================================================================
scope                       person fields
=========================== ====================================================================
registry:read               id, household_id, village_code, sex, birth_year, status,
                            relationship, disability, version (age derives from birth_year)
registry:read:identity      nik, full_name, birth_date, death_date, kk, address
registry:read:socioeconomic decile, floor, wall, roof, water, sanitation, electricity,
                            house_fit, education, occupation
=========================== ====================================================================

=========================== ====================================================================
scope                       household fields
=========================== ====================================================================
registry:read               id, village_code, status, version, members
registry:read:identity      kk, address
registry:read:socioeconomic decile, floor, wall, roof, water, sanitation, electricity, house_fit
=========================== ====================================================================

A person's ``kk``, ``address``, ``decile`` and house conditions come from their household (they
are ``null`` for a person without one, when the scope reveals them). Members inside a household
answer carry person fields only: the household's fields are on the household itself.

Filters follow the same rule as fields: searching by ``name`` needs ``registry:read:identity``
and by decile needs ``registry:read:socioeconomic``, or the filter would reveal what the
projection hides.

The SQL of each projection is built here from the same table, so a caller's query selects (and
joins) only what it may see; the response models list every field as optional, with the scope
that reveals it in its description.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.fields import (
    Disability,
    Education,
    Electricity,
    Floor,
    Relationship,
    Roof,
    Sanitation,
    Wall,
    Water,
)

__all__ = [
    "HOUSEHOLD_FIELDS",
    "IDENTITY",
    "PERSON_FIELDS",
    "READ",
    "SOCIOECONOMIC",
    "FieldSpec",
    "HouseholdView",
    "PersonView",
    "Projection",
    "projection_for",
]

READ = "registry:read"
IDENTITY = "registry:read:identity"
SOCIOECONOMIC = "registry:read:socioeconomic"
PROJECTION_SCOPES = (READ, IDENTITY, SOCIOECONOMIC)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    scope: str
    sql: str  # expression over ``p`` (person) and ``h`` (household)
    household_level: bool = False  # comes from the household row


PERSON_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", READ, "p.id::text"),
    FieldSpec("household_id", READ, "p.household_id::text"),
    FieldSpec("village_code", READ, "p.village_code"),
    FieldSpec("sex", READ, "p.sex"),
    FieldSpec("birth_year", READ, "EXTRACT(YEAR FROM p.birth_date)::int"),
    FieldSpec("status", READ, "p.status"),
    FieldSpec("relationship", READ, "p.relationship"),
    FieldSpec("disability", READ, "p.disability"),
    FieldSpec("version", READ, "p.version"),
    FieldSpec("nik", IDENTITY, "p.nik"),
    FieldSpec("full_name", IDENTITY, "p.full_name"),
    FieldSpec("birth_date", IDENTITY, "p.birth_date"),
    FieldSpec("death_date", IDENTITY, "p.death_date"),
    FieldSpec("kk", IDENTITY, "h.kk", household_level=True),
    FieldSpec("address", IDENTITY, "h.address", household_level=True),
    FieldSpec("decile", SOCIOECONOMIC, "h.decile", household_level=True),
    FieldSpec("floor", SOCIOECONOMIC, "h.floor", household_level=True),
    FieldSpec("wall", SOCIOECONOMIC, "h.wall", household_level=True),
    FieldSpec("roof", SOCIOECONOMIC, "h.roof", household_level=True),
    FieldSpec("water", SOCIOECONOMIC, "h.water", household_level=True),
    FieldSpec("sanitation", SOCIOECONOMIC, "h.sanitation", household_level=True),
    FieldSpec("electricity", SOCIOECONOMIC, "h.electricity", household_level=True),
    FieldSpec("house_fit", SOCIOECONOMIC, "h.house_fit", household_level=True),
    FieldSpec("education", SOCIOECONOMIC, "p.education"),
    FieldSpec("occupation", SOCIOECONOMIC, "p.occupation"),
)

HOUSEHOLD_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", READ, "h.id::text"),
    FieldSpec("village_code", READ, "h.village_code"),
    FieldSpec("status", READ, "h.status"),
    FieldSpec("version", READ, "h.version"),
    FieldSpec("kk", IDENTITY, "h.kk"),
    FieldSpec("address", IDENTITY, "h.address"),
    FieldSpec("decile", SOCIOECONOMIC, "h.decile"),
    FieldSpec("floor", SOCIOECONOMIC, "h.floor"),
    FieldSpec("wall", SOCIOECONOMIC, "h.wall"),
    FieldSpec("roof", SOCIOECONOMIC, "h.roof"),
    FieldSpec("water", SOCIOECONOMIC, "h.water"),
    FieldSpec("sanitation", SOCIOECONOMIC, "h.sanitation"),
    FieldSpec("electricity", SOCIOECONOMIC, "h.electricity"),
    FieldSpec("house_fit", SOCIOECONOMIC, "h.house_fit"),
)
# ``members`` (registry:read) is assembled from person rows, not selected from the household.


@dataclass(frozen=True)
class Projection:
    """The fields one combination of scopes reveals, and the SQL select lists for them."""

    scopes: frozenset[str]
    person_fields: tuple[str, ...]
    household_fields: tuple[str, ...]
    person_columns: str  # ``p.id AS id, ...`` over person p LEFT JOIN household h
    member_columns: str  # person fields without the household-level ones
    household_columns: str
    needs_household_join: bool

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def _columns(specs: tuple[FieldSpec, ...]) -> str:
    return ", ".join(f"{spec.sql} AS {spec.name}" for spec in specs)


@cache
def _projection(scopes: frozenset[str]) -> Projection:
    person = tuple(spec for spec in PERSON_FIELDS if spec.scope in scopes)
    household = tuple(spec for spec in HOUSEHOLD_FIELDS if spec.scope in scopes)
    members = tuple(spec for spec in person if not spec.household_level)
    return Projection(
        scopes=scopes,
        person_fields=tuple(spec.name for spec in person),
        household_fields=(*(spec.name for spec in household), "members"),
        person_columns=_columns(person),
        member_columns=_columns(members),
        household_columns=_columns(household),
        needs_household_join=any(spec.household_level for spec in person),
    )


def projection_for(scopes: frozenset[str]) -> Projection:
    """The projection of a caller holding ``scopes`` (which include ``registry:read``)."""
    return _projection(frozenset(scope for scope in scopes if scope in PROJECTION_SCOPES))


def _revealed(scope: str, text: str) -> str:
    return f"{text} Revealed by the scope `{scope}`; absent from the answer without it."


def _field(scope: str, text: str) -> Any:
    return Field(default=None, description=_revealed(scope, text))


class PersonView(BaseModel):
    """A person as the caller's scopes reveal it: every field is optional (see the scope)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2a0e-8d4b-4c11-9a51-3f7d2b9e8c10",
                    "household_id": "0b9d7c4e-2f3a-4e5b-8c6d-7e8f9a0b1c2d",
                    "village_code": "1771011001",
                    "sex": "F",
                    "birth_year": 1990,
                    "status": "alive",
                    "relationship": "spouse",
                    "disability": "none",
                    "version": 1,
                    "nik": "1771014509900001",
                    "full_name": "Siti Aminah",
                    "birth_date": "1990-09-05",
                    "death_date": None,
                    "kk": "1771010101200001",
                    "address": "Jl. Merapi No. 12, RT 003/RW 001",
                }
            ]
        }
    )

    id: uuid.UUID | None = _field(READ, "Registry id of the person.")
    household_id: uuid.UUID | None = _field(READ, "Registry id of the person's household (KK).")
    village_code: str | None = _field(READ, "Kemendagri code of the village of residence.")
    sex: Literal["M", "F"] | None = _field(READ, "Sex.")
    birth_year: int | None = _field(READ, "Year of birth (the age derives from it).")
    status: Literal["alive", "deceased", "moved"] | None = _field(READ, "Civil status.")
    relationship: Relationship | None = _field(READ, "Relationship to the head of the KK.")
    disability: Disability | None = _field(READ, "Disability.")
    version: int | None = _field(READ, "Row version; grows with every change.")
    nik: str | None = _field(IDENTITY, "16-digit NIK.")
    full_name: str | None = _field(IDENTITY, "Full name.")
    birth_date: date | None = _field(IDENTITY, "Exact birth date.")
    death_date: date | None = _field(IDENTITY, "Date of death (null unless deceased).")
    kk: str | None = _field(IDENTITY, "16-digit family-card (KK) number of the household.")
    address: str | None = _field(IDENTITY, "Street address of the household.")
    decile: int | None = _field(SOCIOECONOMIC, "DTSEN welfare decile of the household, 1-10.")
    floor: Floor | None = _field(SOCIOECONOMIC, "Main floor material of the house.")
    wall: Wall | None = _field(SOCIOECONOMIC, "Main wall material of the house.")
    roof: Roof | None = _field(SOCIOECONOMIC, "Main roof material of the house.")
    water: Water | None = _field(SOCIOECONOMIC, "Source of drinking water.")
    sanitation: Sanitation | None = _field(SOCIOECONOMIC, "Toilet facility.")
    electricity: Electricity | None = _field(SOCIOECONOMIC, "Electricity connection.")
    house_fit: bool | None = _field(SOCIOECONOMIC, "False for a house unfit to live in (RTLH).")
    education: Education | None = _field(SOCIOECONOMIC, "Highest education completed.")
    occupation: str | None = _field(SOCIOECONOMIC, "Occupation.")


class HouseholdView(BaseModel):
    """A household (KK) with the members the caller may see, projected by its scopes."""

    id: uuid.UUID | None = _field(READ, "Registry id of the household.")
    village_code: str | None = _field(READ, "Kemendagri code of the household's village.")
    status: Literal["active", "dissolved"] | None = _field(READ, "Whether the KK is current.")
    version: int | None = _field(READ, "Row version; grows with every change.")
    kk: str | None = _field(IDENTITY, "16-digit family-card (KK) number.")
    address: str | None = _field(IDENTITY, "Street address.")
    decile: int | None = _field(SOCIOECONOMIC, "DTSEN welfare decile, 1-10.")
    floor: Floor | None = _field(SOCIOECONOMIC, "Main floor material of the house.")
    wall: Wall | None = _field(SOCIOECONOMIC, "Main wall material of the house.")
    roof: Roof | None = _field(SOCIOECONOMIC, "Main roof material of the house.")
    water: Water | None = _field(SOCIOECONOMIC, "Source of drinking water.")
    sanitation: Sanitation | None = _field(SOCIOECONOMIC, "Toilet facility.")
    electricity: Electricity | None = _field(SOCIOECONOMIC, "Electricity connection.")
    house_fit: bool | None = _field(SOCIOECONOMIC, "False for a house unfit to live in (RTLH).")
    members: list[PersonView] | None = _field(
        READ,
        "Members the caller may see (those outside its regions never appear), head first; "
        "person fields only, the household's own fields are above.",
    )
