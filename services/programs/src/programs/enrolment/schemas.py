from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from programs.events import Programme


class EnrolmentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"person_id": "0b7f3d4e-8a51-4c1e-9a52-1c1f6b0c2d11", "programme": "PKH"}]
        },
    )

    person_id: uuid.UUID = Field(description="The registry's person id")
    programme: Programme


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    person_id: uuid.UUID
    programme: Programme
    unit: Literal["person", "household"]
    household_id: uuid.UUID | None = Field(description="The family card, for a household programme")
    region_code: str
    status: EnrolmentStatus
    enrolled_by_agency: str
    created_at: datetime
    rule_version: int | None = Field(description="The rule version the decision was made under")
    decision: dict[str, Any] | None = Field(
        description="Why the person was admitted: each clause, the fact it read, pass or fail"
    )


class EnrolmentTransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None = Field(description="null: the enrolment began")
    to_status: str
    reason: str
    actor: str = Field(description="The agency, or `registry:<event id>` for a registry event")
    at: datetime


class EnrolmentHistory(BaseModel):
    enrolment_id: uuid.UUID
    transitions: list[EnrolmentTransitionRead]


EnrolmentStatus = Literal["pending", "active", "suspended", "graduated", "terminated", "exited"]


@dataclass(frozen=True)
class EnrolmentFilter:
    programme: str | None = None
    status: EnrolmentStatus | None = None
    region: str | None = None
    person_id: uuid.UUID | None = None
    household_id: uuid.UUID | None = None
    after: uuid.UUID | None = None
    limit: int = 50


class EnrolmentPage(BaseModel):
    items: list[EnrolmentRead]
    next_cursor: uuid.UUID | None = Field(description="Pass as `after` for the next page")
