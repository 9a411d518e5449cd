"""Response shapes of region codes."""

from __future__ import annotations

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)

__all__ = ["RegionRead"]


class RegionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    level: int = Field(description="1 province, 2 regency/city, 3 district, 4 village")
    parent_code: str | None
    name: str
