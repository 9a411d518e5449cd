"""Events programs publishes."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/programs"
ENROLMENT_TOPIC = "programs.enrolment.v1"
ENROLMENT_CREATED = "programs.enrolment.created.v1"

Programme = Literal["PKH", "BPNT", "BLT", "PBI_JK", "SEKOLAH_RAKYAT"]


class EnrolmentCreated(BaseModel):
    """A person was enrolled in a programme."""

    model_config = ConfigDict(extra="forbid")

    enrolment_id: uuid.UUID
    person_id: uuid.UUID
    programme: Programme
    region_code: str = Field(pattern=r"^[0-9]{10}$")


PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    ENROLMENT_CREATED: (ENROLMENT_TOPIC, EnrolmentCreated),
}
