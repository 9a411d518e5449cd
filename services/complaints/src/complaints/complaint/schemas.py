"""Request and response shapes of the complaints API (kept apart from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from complaints.events import REGION_PATTERN, Category, Channel

ComplaintStatus = Literal["received", "assigned", "resolved", "escalated", "closed"]


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "channel": "walk_in",
                    "category": "data_correction",
                    "region_code": "1771011001",
                    "person_id": "0b7f3d4e-8a51-4c1e-9a52-1c1f6b0c2d11",
                    "summary": "Birth date in DTSEN differs from the family card",
                }
            ]
        },
    )

    channel: Channel
    category: Category
    region_code: str = Field(
        pattern=REGION_PATTERN,
        description="Kemendagri code of the region the complaint concerns (2, 4, 6 or 10 digits)",
    )
    person_id: uuid.UUID | None = Field(
        default=None, description="The registry's person id, when the complaint is about one"
    )
    summary: str = Field(min_length=1, max_length=2000)


class ComplaintRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    channel: Channel
    category: Category
    region_code: str
    person_id: uuid.UUID | None
    summary: str
    status: ComplaintStatus
    due_at: datetime = Field(description="First response due (LAPOR!: 3 days after filing)")
    filed_by_agency: str
    created_at: datetime
