"""Request and response shapes of the registry API (kept apart from the tables)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from registry.events import DeathSource
from registry.nik import future_date_problem, kk_format_problem, nik_format_problem

NIK_PATTERN = r"^[0-9]{16}$"
KK_PATTERN = r"^[0-9]{16}$"
VILLAGE_PATTERN = r"^[0-9]{10}$"

_Value = TypeVar("_Value")


def _refused_by(problem: Callable[[_Value], str | None], error_type: str) -> AfterValidator:
    """A validator that refuses with the registry's own reason (the import's words), not
    pydantic's generic one such as "String should match pattern"."""

    def check(value: _Value) -> _Value:
        if (reason := problem(value)) is not None:
            raise PydanticCustomError(error_type, reason)
        return value

    return AfterValidator(check)


def _sixteen_digits(pattern: str) -> WithJsonSchema:
    # The validator does the refusing; the document still states the shape it accepts.
    return WithJsonSchema({"type": "string", "pattern": pattern, "minLength": 16, "maxLength": 16})


# Checked after a model's str_strip_whitespace, so " 1771014509900001 " is still taken, trimmed.
NikNumber = Annotated[
    str, _refused_by(nik_format_problem, "nik_format"), _sixteen_digits(NIK_PATTERN)
]
KkNumber = Annotated[str, _refused_by(kk_format_problem, "kk_format"), _sixteen_digits(KK_PATTERN)]
BirthDate = Annotated[
    date,
    _refused_by(lambda day: future_date_problem("birth date", day), "date_in_future"),
    Field(description="Not in the future"),
]

# registry.models enumerations, spelled out for OpenAPI (a test keeps them equal).
Relationship = Literal[
    "head", "spouse", "child", "child_in_law", "grandchild", "parent", "in_law", "other"
]
Disability = Literal["none", "physical", "sensory", "intellectual", "mental", "multiple"]
Education = Literal["none", "sd", "smp", "sma", "diploma", "bachelor", "postgraduate"]
Floor = Literal["earth", "bamboo", "wood", "cement", "ceramic", "other"]
Wall = Literal["bamboo", "wood", "plaster", "brick", "other"]
Roof = Literal["thatch", "zinc", "asbestos", "tile", "concrete", "other"]
Water = Literal["unprotected", "protected_well", "rain", "piped", "bottled", "other"]
Sanitation = Literal["none", "shared", "private"]
Electricity = Literal["none", "non_pln", "pln_450", "pln_900", "pln_over_900"]
Decile = Annotated[int, Field(ge=1, le=10, description="DTSEN welfare decile, 1 = poorest 10 %")]
Occupation = Annotated[str, Field(max_length=100, examples=["petani"])]


class PersonCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "nik": "1771014509900001",
                    "full_name": "Siti Aminah",
                    "birth_date": "1990-09-05",
                    "sex": "F",
                    "village_code": "1771011001",
                }
            ]
        },
    )

    nik: NikNumber = Field(description="16-digit Nomor Induk Kependudukan")
    full_name: str = Field(min_length=1, max_length=200)
    birth_date: BirthDate
    sex: Literal["M", "F"]
    village_code: str = Field(pattern=VILLAGE_PATTERN, description="Kemendagri village code")
    household_id: uuid.UUID | None = Field(
        default=None, description="The family card (KK) the person belongs to, if known"
    )
    relationship: Relationship = Field(
        default="other", description="Relationship to the head of the household"
    )
    disability: Disability = "none"
    education: Education = "none"
    occupation: Occupation = ""


class PersonRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    nik: str
    full_name: str
    birth_date: date
    sex: Literal["M", "F"]
    village_code: str
    status: Literal["alive", "deceased", "moved"]
    created_at: datetime


class PersonRecord(PersonRead):
    """The whole record, as returned to the registry clerk who changed it."""

    household_id: uuid.UUID | None
    relationship: Relationship
    death_date: date | None
    disability: Disability
    education: Education
    occupation: str
    version: int = Field(description="Row version; bumps only when something really changed")
    modified_at: datetime


class _Patch(BaseModel):
    """A partial update: only the fields sent change; ``null`` is refused where it means nothing."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: Any) -> Any:
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("may not be null; leave the field out to keep its value")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class PersonUpdate(_Patch):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"education": "sma", "occupation": "pedagang"}]}
    )

    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    relationship: Relationship | None = None
    disability: Disability | None = None
    education: Education | None = None
    occupation: Occupation | None = None


class PersonDeath(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"death_date": "2026-10-02", "source": "dukcapil"}]},
    )

    death_date: date
    source: DeathSource = Field(description="Who reported the death")


class PersonMove(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "village_code": "1771011002",
                    "household_id": "6a0f3c1e-2b7d-4c38-9e52-3f1d8a7b6c40",
                    "relationship": "spouse",
                }
            ]
        },
    )

    village_code: str = Field(pattern=VILLAGE_PATTERN, description="The village moved to")
    household_id: uuid.UUID | None = Field(
        default=None,
        description="The family card joined (in that village); none: the person leaves their KK",
    )
    relationship: Relationship | None = Field(
        default=None, description="Relationship to the new head; default: kept, or `other`"
    )


class HouseholdConditions(BaseModel):
    """What DTSEN records of the house (what RTLH, PKH and sanitation programmes target on)."""

    floor: Floor = "other"
    wall: Wall = "other"
    roof: Roof = "other"
    water: Water = "other"
    sanitation: Sanitation = "none"
    electricity: Electricity = "none"
    house_fit: bool = Field(default=True, description="False: *rumah tidak layak huni* (RTLH)")


class HouseholdCreate(HouseholdConditions):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "kk": "1771010203150007",
                    "village_code": "1771011001",
                    "address": "Jl. Merapi No. 12, RT 003 RW 001",
                    "decile": 2,
                    "floor": "cement",
                    "wall": "wood",
                    "roof": "zinc",
                    "water": "protected_well",
                    "sanitation": "shared",
                    "electricity": "pln_450",
                    "house_fit": False,
                }
            ]
        },
    )

    kk: KkNumber = Field(description="16-digit family-card (Kartu Keluarga) number")
    village_code: str = Field(pattern=VILLAGE_PATTERN, description="Kemendagri village code")
    address: str = Field(default="", max_length=500)
    decile: Decile | None = None


class HouseholdUpdate(_Patch):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"decile": 4, "roof": "tile", "house_fit": True}]}
    )
    nullable: ClassVar[frozenset[str]] = frozenset({"decile"})

    address: str | None = Field(default=None, max_length=500)
    decile: Decile | None = Field(default=None, description="`null`: not ranked")
    floor: Floor | None = None
    wall: Wall | None = None
    roof: Roof | None = None
    water: Water | None = None
    sanitation: Sanitation | None = None
    electricity: Electricity | None = None
    house_fit: bool | None = None


class HouseholdMember(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    relationship: Relationship
    status: Literal["alive", "deceased", "moved"]


class HouseholdRecord(HouseholdConditions):
    """The whole family card, as returned to the registry clerk who changed it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kk: str
    village_code: str
    address: str
    decile: int | None
    status: Literal["active", "dissolved"]
    version: int = Field(description="Row version; bumps only when something really changed")
    created_at: datetime
    modified_at: datetime
    members: list[HouseholdMember] = Field(
        default_factory=list, description="People on the card (living first, then the others)"
    )


Relationships = Annotated[
    dict[uuid.UUID, Relationship],
    Field(description="New relationship to the head for some of the people who change card"),
]


class HouseholdMoveRequest(BaseModel):
    """The whole family moves: the card and its living members get the new village."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {"village_code": "1771031003", "address": "Jl. Kinibalu No. 4, RT 02 RW 01"},
                {
                    "village_code": "1701012001",
                    "address": "Desa Batu Ampar, RT 01",
                    "kk": "1701011510260004",
                },
            ]
        },
    )

    village_code: str = Field(pattern=VILLAGE_PATTERN, description="The village moved to")
    address: str = Field(min_length=1, max_length=500, description="The new address")
    kk: KkNumber | None = Field(
        default=None,
        description="The new KK number when Dukcapil issued one (a move to another district "
        "does); default: the card keeps its number",
    )


class HouseholdSplitRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "person_ids": [
                        "0b9e3d3a-8f0b-4a53-a8c1-5a1f8e2b9d11",
                        "5d2c7e44-1a6b-4f0e-9b3d-7c8e1f2a3b4c",
                    ],
                    "kk": "1771011410260003",
                    "head_id": "0b9e3d3a-8f0b-4a53-a8c1-5a1f8e2b9d11",
                    "relationships": {"5d2c7e44-1a6b-4f0e-9b3d-7c8e1f2a3b4c": "spouse"},
                }
            ]
        },
    )

    person_ids: list[uuid.UUID] = Field(
        min_length=1, max_length=50, description="Living members who leave for the new card"
    )
    kk: KkNumber = Field(description="KK number of the new family card")
    head_id: uuid.UUID = Field(description="Who heads the new card (one of person_ids)")
    village_code: str | None = Field(
        default=None, pattern=VILLAGE_PATTERN, description="Default: the old card's village"
    )
    address: str | None = Field(
        default=None, max_length=500, description="Default: the old card's address"
    )
    relationships: Relationships = Field(default_factory=dict)


class HouseholdSplitResult(BaseModel):
    household: HouseholdRecord = Field(description="The card the members left")
    new_household: HouseholdRecord


class HouseholdMergeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"household_id": "6a0f3c1e-2b7d-4c38-9e52-3f1d8a7b6c40"}]},
    )

    household_id: uuid.UUID = Field(
        description="The card absorbed into this one: its living members move, it is dissolved"
    )
    relationships: Relationships = Field(default_factory=dict)


class VersionRead(BaseModel):
    version: int
    valid_from: datetime
    valid_to: datetime | None = Field(description="null: the current version")
    data: dict[str, Any] = Field(description="The record as it was, projected by your scopes")


class PersonHistory(BaseModel):
    person_id: uuid.UUID
    as_of: AwareDatetime | None = None
    versions: list[VersionRead]


class HouseholdHistory(BaseModel):
    household_id: uuid.UUID
    as_of: AwareDatetime | None = None
    versions: list[VersionRead]


class RegionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    level: int = Field(description="1 province, 2 regency/city, 3 district, 4 village")
    parent_code: str | None
    name: str
