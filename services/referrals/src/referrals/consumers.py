"""Events from other services that referrals acts on (tolerant-reader payload models).

A complaint that a person could not get a service (``category == "service_access"``) about a
known person in a known village opens a referral to the regency's social office, so the
complaint gets a tracked follow-up with a deadline.
"""

from __future__ import annotations

import logging
import uuid

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from referrals.referral import service
from shared.consumer import Handler
from shared.envelope import CloudEvent
from shared.service import ConsumerSpec

log = logging.getLogger("referrals.consumers")


class ComplaintFiled(BaseModel):
    """What referrals reads of `complaints.complaint.filed.v1`."""

    complaint_id: uuid.UUID
    category: str
    region_code: str = Field(pattern=r"^[0-9]{2,10}$")
    person_id: uuid.UUID | None = None
    summary: str = Field(min_length=1, max_length=2000)


async def on_complaint_filed(
    session: AsyncSession, complaint: ComplaintFiled, event: CloudEvent
) -> None:
    if complaint.category != "service_access" or complaint.person_id is None:
        return
    if len(complaint.region_code) != 10:
        # A referral is made for a person in a village; a wider region cannot be referred.
        log.info(
            "referrals.complaint.not_referred",
            extra={
                "complaint_id": str(complaint.complaint_id),
                "reason": "region is not a village",
            },
        )
        return
    await service.open_referral_for_complaint(
        session,
        complaint_id=complaint.complaint_id,
        person_id=complaint.person_id,
        village_code=complaint.region_code,
        summary=complaint.summary,
    )


HANDLERS = {
    "complaints.complaint.filed.v1": Handler(ComplaintFiled, on_complaint_filed),
}

CONSUMERS = [ConsumerSpec(name="referrals", topics=["complaints.complaint.v1"], handlers=HANDLERS)]
