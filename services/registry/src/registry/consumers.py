"""Events from other services that the registry acts on (tolerant-reader payload models)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from registry.correction import service as corrections
from registry.dci import notifications as dci_notifications
from shared.consumer import Handler
from shared.envelope import CloudEvent
from shared.service import ConsumerSpec


class ComplaintFiled(BaseModel):
    """What the registry reads of `complaints.complaint.filed.v1`."""

    complaint_id: uuid.UUID
    category: str
    region_code: str = Field(pattern=r"^[0-9]{2,10}$")
    person_id: uuid.UUID | None = None
    summary: str = Field(max_length=2000)


async def on_complaint_filed(
    session: AsyncSession, complaint: ComplaintFiled, event: CloudEvent
) -> None:
    if complaint.category != "data_correction":
        return
    await corrections.open_correction_request(
        session,
        complaint_id=complaint.complaint_id,
        person_id=complaint.person_id,
        region_code=complaint.region_code,
        summary=complaint.summary,
    )


HANDLERS = {
    "complaints.complaint.filed.v1": Handler(ComplaintFiled, on_complaint_filed),
}

CONSUMERS = [
    ConsumerSpec(name="registry", topics=["complaints.complaint.v1"], handlers=HANDLERS),
    # SPDCI notify callbacks to the subscriptions a registry event matches.
    dci_notifications.CONSUMER,
]
