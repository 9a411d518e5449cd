"""Request and response shapes of the referrals API (kept apart from the tables)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from referrals.events import AGENCY_PATTERN, ServiceType

ReferralStatus = Literal["sent", "accepted", "completed", "rejected", "expired"]


class ReferralCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "person_id": "0b7f3d4e-8a51-4c1e-9a52-1c1f6b0c2d11",
                    "region_code": "1771011001",
                    "service_type": "health_check",
                    "to_agency": "DINKES-1771",
                    "reason": "Health check before Sekolah Rakyat entry",
                    "due_at": "2026-12-15T17:00:00+07:00",
                }
            ]
        },
    )

    person_id: uuid.UUID = Field(description="The registry's person id")
    region_code: str = Field(
        pattern=r"^[0-9]{10}$", description="Kemendagri code of the person's village"
    )
    service_type: ServiceType
    to_agency: str = Field(
        pattern=AGENCY_PATTERN,
        description="Code of the receiving agency or office",
        examples=["BPJS", "BGN", "DINKES-1771"],
    )
    reason: str = Field(min_length=1, max_length=2000)
    due_at: AwareDatetime | None = Field(
        default=None,
        description="When the receiving agency must have answered; must lie in the future "
        "and within a year. Default: 14 days from now.",
    )


class ReferralRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    person_id: uuid.UUID
    region_code: str
    service_type: ServiceType
    to_agency: str
    reason: str
    due_at: datetime
    status: ReferralStatus
    referred_by_agency: str
    complaint_id: uuid.UUID | None = Field(
        description="The complaint this referral was opened from, if any"
    )
    created_at: datetime
