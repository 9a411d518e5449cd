"""Events the referrals service publishes. One topic per aggregate and version; the key is its id.

Payloads carry the registry's person id, never the NIK or the name, and not the free-text
reason: receiving agencies read the referral itself through the audited REST API.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "/simpul/referrals"
REFERRAL_TOPIC = "referrals.referral.v1"
REFERRAL_CREATED = "referrals.referral.created.v1"

ServiceType = Literal[
    "health_check",
    "pbi_jk_enrolment",
    "sekolah_rakyat",
    "rtlh_house_repair",
    "rehabilitation",
    "disability_aid",
    "cooperative_membership",
    "other",
]
SERVICE_TYPES: tuple[str, ...] = get_args(ServiceType)
AGENCY_PATTERN = r"^[A-Z][A-Z0-9-]{1,49}$"


class ReferralCreated(BaseModel):
    """A person was referred to another agency's service."""

    model_config = ConfigDict(extra="forbid")

    referral_id: uuid.UUID
    person_id: uuid.UUID = Field(description="The registry's person id")
    service_type: ServiceType
    region_code: str = Field(pattern=r"^[0-9]{10}$", examples=["1771011001"])
    to_agency: str = Field(pattern=AGENCY_PATTERN, examples=["DINKES-1771"])
    due_at: datetime


# type -> (topic, payload model): the catalogue the AsyncAPI document is generated from
PUBLISHED: dict[str, tuple[str, type[BaseModel]]] = {
    REFERRAL_CREATED: (REFERRAL_TOPIC, ReferralCreated),
}
