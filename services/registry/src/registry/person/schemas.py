"""Request and response shapes of people (kept apart from the tables)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
)

from registry.events import DeathSource
from registry.fields import (
    VILLAGE_PATTERN,
    BirthDate,
    Disability,
    Education,
    NikNumber,
    Occupation,
    Patch,
    Relationship,
)
from registry.history import VersionRead

__all__ = [
    "PersonCreate",
    "PersonDeath",
    "PersonHistory",
    "PersonMove",
    "PersonRead",
    "PersonRecord",
    "PersonUpdate",
]


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


class PersonUpdate(Patch):
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


class PersonHistory(BaseModel):
    person_id: uuid.UUID
    as_of: AwareDatetime | None = None
    versions: list[VersionRead]
