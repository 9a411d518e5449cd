"""Field types the registry's request and response shapes share: NIK, KK, village code, birth
date, the DTSEN enumerations, and the partial-update base. Each refuses with the registry's own
words (those of :mod:`registry.nik` and the import), not pydantic's generic ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from registry.nik import future_date_problem, kk_format_problem, nik_format_problem

__all__ = [
    "BirthDate",
    "Decile",
    "Disability",
    "Education",
    "Electricity",
    "Floor",
    "KK_PATTERN",
    "KkNumber",
    "NIK_PATTERN",
    "NikNumber",
    "Occupation",
    "Patch",
    "Relationship",
    "Roof",
    "Sanitation",
    "VILLAGE_PATTERN",
    "Wall",
    "Water",
]

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


class Patch(BaseModel):
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
