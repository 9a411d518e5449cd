"""Request and response shapes of the programme catalogue and its eligibility decisions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Unit = Literal["person", "household"]
BenefitKind = Literal["cash", "premium", "in_kind", "membership"]
BenefitPeriod = Literal["once", "meal", "month", "quarter", "year"]
CODE_PATTERN = r"^[A-Z][A-Z0-9_]{1,29}$"
ProgrammeCode = Field(pattern=CODE_PATTERN, examples=["PKH"])

RULE_DESCRIPTION = (
    "An eligibility rule: {all: [...]}, {any: [...]}, {not: rule} or a clause {fact, <operator>: "
    "value}; see the README's rules section for the facts and operators."
)
RULE_EXAMPLE: dict[str, Any] = {
    "all": [
        {"fact": "person.status", "is": "alive"},
        {"fact": "household.decile", "at_most": 4},
    ]
}


class Benefit(BaseModel):
    kind: BenefitKind
    amount: int | None = Field(
        default=None, ge=0, description="Rupiah per period; none for a benefit in kind"
    )
    period: BenefitPeriod | None = None
    description: str = Field(default="", max_length=2000)


class ProgrammeCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "code": "ASPD",
                    "name": "Asistensi Sosial Penyandang Disabilitas",
                    "agency": "Kemensos",
                    "unit": "person",
                    "benefit": {
                        "kind": "cash",
                        "amount": 250_000,
                        "period": "month",
                        "description": "Monthly assistance for a person with a severe disability",
                    },
                    "source": "Permensos (the regulation that sets the amount)",
                    "rule": {
                        "all": [
                            {"fact": "person.status", "is": "alive"},
                            {"fact": "person.disability", "is_not": "none"},
                            {"fact": "household.decile", "at_most": 4},
                        ]
                    },
                }
            ]
        },
    )

    code: str = ProgrammeCode
    name: str = Field(min_length=3, max_length=200)
    agency: str = Field(min_length=2, max_length=100, description="The owning agency")
    unit: Unit = Field(description="Who is enrolled: a person, or a household (family card)")
    benefit: Benefit
    source: str = Field(
        default="", max_length=1000, description="Where the benefit's figures come from"
    )
    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])


class RuleVersionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"rule": RULE_EXAMPLE, "note": "Kepmensos 2026: desil 1-4"}]
        },
    )

    rule: dict[str, Any] = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])
    note: str = Field(
        min_length=3, max_length=500, description="Why the rule changes (the regulation, ...)"
    )


class RuleVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    rule: dict[str, Any]
    text: str = Field(description="The rule in one line")
    note: str
    created_by: str
    created_at: datetime


class ProgrammeRead(BaseModel):
    code: str
    name: str
    agency: str
    unit: Unit
    benefit: Benefit
    source: str
    rule: RuleVersionRead = Field(description="The rule in force")


class ProgrammeList(BaseModel):
    items: list[ProgrammeRead]


class RuleHistory(BaseModel):
    programme: str
    versions: list[RuleVersionRead]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"person_id": "6a0f3c1e-2b7d-4c38-9e52-3f1d8a7b6c40", "on": "2026-12-04"}]
        },
    )

    person_id: uuid.UUID = Field(
        description="The person applying (for a household programme: on behalf of their card)"
    )
    on: date | None = Field(default=None, description="Decide as of this day; default today")


class Explanation(BaseModel):
    rule: str = Field(description="The part of the rule, in words")
    passed: bool
    fact: str | None = Field(default=None, description="The fact a clause read")
    value: Any = Field(default=None, description="Its value (null: unknown, the clause fails)")
    parts: list[Explanation] = Field(default_factory=list)


class Decision(BaseModel):
    programme: str
    person_id: uuid.UUID
    household_id: uuid.UUID | None
    on: date
    eligible: bool
    rule_version: int
    failed: list[str] = Field(description="The clauses that decided a refusal, in words")
    explanation: Explanation


class EligiblePage(BaseModel):
    programme: str
    rule_version: int
    on: date
    person_ids: list[uuid.UUID]
    next_cursor: uuid.UUID | None = Field(description="Pass as `after` for the next page")
