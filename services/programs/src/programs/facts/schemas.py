from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PersonFactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    person_id: uuid.UUID
    village_code: str
    birth_date: date
    sex: Literal["M", "F"]
    status: Literal["alive", "deceased", "moved"]
    as_of: datetime
    referral_count: int = 0


class PersonFactPage(BaseModel):
    items: list[PersonFactRead]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null at the end"
    )
