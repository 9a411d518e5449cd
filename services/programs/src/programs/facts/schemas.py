from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PersonFactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    person_id: uuid.UUID
    household_id: uuid.UUID | None = Field(description="The family card (KK) the person is on")
    village_code: str
    birth_date: date
    sex: Literal["M", "F"]
    status: Literal["alive", "deceased", "moved"]
    relationship: str = Field(
        description="To the head of the card, as the registry names it", examples=["spouse"]
    )
    disability: str = Field(description="As the registry names it", examples=["none"])
    as_of: datetime
    referral_count: int = 0


class PersonFactPage(BaseModel):
    items: list[PersonFactRead]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null at the end"
    )


class HouseholdFactRead(BaseModel):
    """A family card as the registry's events left it, with its living members."""

    model_config = ConfigDict(from_attributes=True)

    household_id: uuid.UUID
    village_code: str
    decile: int | None = Field(description="DTSEN welfare decile, 1 = poorest; null: unranked")
    status: Literal["active", "dissolved"]
    house_fit: bool = Field(description="False: an unfit house (RTLH candidate)")
    floor: str
    wall: str
    roof: str
    water: str
    sanitation: str
    electricity: str
    version: int = Field(description="The registry's row version this fact reflects")
    as_of: datetime = Field(description="Time of the registry event last applied")
    member_ids: list[uuid.UUID] = Field(
        default_factory=list,
        description="Person ids of the living members programs knows of, in id order",
    )
