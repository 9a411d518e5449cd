"""Request and response shapes of the registry API (kept apart from the tables)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

NIK_PATTERN = r"^[0-9]{16}$"


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

    nik: str = Field(pattern=NIK_PATTERN, description="16-digit Nomor Induk Kependudukan")
    full_name: str = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Literal["M", "F"]
    village_code: str = Field(pattern=r"^[0-9]{10}$", description="Kemendagri village code")


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


class RegionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    level: int = Field(description="1 province, 2 regency/city, 3 district, 4 village")
    parent_code: str | None
    name: str
