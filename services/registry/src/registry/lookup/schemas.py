"""Request and response shapes of the lookups (the records themselves are
:class:`registry.projection.PersonView` and :class:`registry.projection.HouseholdView`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from registry.fields import NikNumber
from registry.projection import PersonView

__all__ = [
    "MAX_BATCH",
    "Nik",
    "PersonLookupRequest",
    "PersonLookupResponse",
    "PersonLookupResult",
    "PersonPage",
    "PersonSearch",
]

MAX_BATCH = 1000
Nik = Annotated[NikNumber, Field(examples=["1771014509900001"])]


class PersonLookupRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "niks": ["1771014509900001", "1771010101850002"],
                    "purpose": "PBI-JK premium verification, January list",
                }
            ]
        },
    )

    niks: list[Nik] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH} NIKs; duplicates are answered once.",
    )
    purpose: str = Field(
        min_length=3,
        max_length=200,
        description="Why you read these records; written to the audit log with your identity.",
    )


class PersonLookupResult(BaseModel):
    nik: str = Field(description="The NIK as asked")
    status: Literal["found", "not_found"] = Field(
        description="`not_found` also when the person lies outside your regions"
    )
    person: PersonView | None = Field(description="The person, projected by your scopes")


class PersonLookupResponse(BaseModel):
    results: list[PersonLookupResult] = Field(description="One per distinct NIK, in asked order")
    found: int
    not_found: int


class PersonPage(BaseModel):
    items: list[PersonView]
    next_cursor: uuid.UUID | None = Field(
        description="Pass as `after` for the next page; null on the last page"
    )


@dataclass(frozen=True)
class PersonSearch:
    region: str | None = None
    decile_min: int | None = None
    decile_max: int | None = None
    status: str | None = None
    name: str | None = None
    after: uuid.UUID | None = None
    limit: int = 50
