"""Events programs publishes."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/programs"
ENROLMENT_TOPIC = "programs.enrolment.v1"
ENROLMENT_CREATED = "programs.enrolment.created.v1"
ENROLMENT_TERMINATED = "programs.enrolment.terminated.v1"

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


class EnrolmentTerminated(BaseModel):
    """An enrolment ended for good: the person died (the reason says which registry event told
    programs), or an officer terminated it."""

    model_config = ConfigDict(extra="forbid")

    enrolment_id: uuid.UUID
    person_id: uuid.UUID
    programme: Programme
    region_code: str = Field(pattern=r"^[0-9]{10}$")
    household_id: uuid.UUID | None = None
    previous_status: Literal["pending", "active", "suspended"]
    reason: str = Field(max_length=500)


PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    ENROLMENT_CREATED: (ENROLMENT_TOPIC, EnrolmentCreated),
    ENROLMENT_TERMINATED: (ENROLMENT_TOPIC, EnrolmentTerminated),
}
