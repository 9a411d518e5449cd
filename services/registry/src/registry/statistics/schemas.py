"""Response shapes of the statistics: counts only."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Counts", "Grouping", "Statistics", "StatisticsGroup"]

Grouping = Literal["decile", "status", "region"]


class Counts(BaseModel):
    households: int = Field(description="Active family cards (KK)", examples=[2])
    people: int = Field(description="People of every status", examples=[7])
    alive: int = Field(examples=[6])
    deceased: int = Field(examples=[1])
    moved: int = Field(examples=[0])


class StatisticsGroup(Counts):
    key: str = Field(
        description="Decile 1-10 or 'unranked'; a status; or a region code", examples=["1"]
    )
    name: str | None = Field(default=None, description="The region's name (by=region)")


class Statistics(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "region": "1771",
                    "region_name": "Kota Bengkulu",
                    "by": "decile",
                    "total": {
                        "households": 2,
                        "people": 7,
                        "alive": 6,
                        "deceased": 1,
                        "moved": 0,
                    },
                    "groups": [
                        {
                            "key": "1",
                            "name": None,
                            "households": 2,
                            "people": 7,
                            "alive": 6,
                            "deceased": 1,
                            "moved": 0,
                        }
                    ],
                }
            ]
        }
    )

    region: str | None = Field(description="The region prefix; null for the whole country")
    region_name: str | None
    by: Grouping
    total: Counts
    groups: list[StatisticsGroup]
