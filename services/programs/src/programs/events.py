"""Events programs publishes."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/programs"
ENROLMENT_TOPIC = "programs.enrolment.v1"
ENROLMENT_CREATED = "programs.enrolment.created.v1"

# A catalogue code (GET /v1/programmes lists them): PKH, BPNT, BLT, PBI_JK, SEKOLAH_RAKYAT,
# MBG, RTLH, KOPDES_MERAH_PUTIH, and those the ministry adds.
Programme = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,29}$", examples=["PKH"])]


class EnrolmentCreated(BaseModel):
    """A person was enrolled in a programme."""

    model_config = ConfigDict(extra="forbid")

    enrolment_id: uuid.UUID
    person_id: uuid.UUID
    programme: Programme
    region_code: str = Field(pattern=r"^[0-9]{10}$")
    household_id: uuid.UUID | None = Field(
        default=None, description="The family card, for a household programme"
    )
    rule_version: int | None = Field(
        default=None, ge=1, description="The version of the rule the decision was made under"
    )


PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    ENROLMENT_CREATED: (ENROLMENT_TOPIC, EnrolmentCreated),
}
