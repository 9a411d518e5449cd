"""Request and response shapes of households (kept apart from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
)

from registry.fields import (
    VILLAGE_PATTERN,
    Decile,
    Electricity,
    Floor,
    KkNumber,
    Patch,
    Relationship,
    Roof,
    Sanitation,
    Wall,
    Water,
)
from registry.history import VersionRead

__all__ = [
    "HouseholdConditions",
    "HouseholdCreate",
    "HouseholdHistory",
    "HouseholdMember",
    "HouseholdMergeRequest",
    "HouseholdMoveRequest",
    "HouseholdRecord",
    "HouseholdSplitRequest",
    "HouseholdSplitResult",
    "HouseholdUpdate",
    "Relationships",
]


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


class HouseholdUpdate(Patch):
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


class HouseholdHistory(BaseModel):
    household_id: uuid.UUID
    as_of: AwareDatetime | None = None
    versions: list[VersionRead]
