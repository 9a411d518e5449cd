"""Complaints use cases: take the session, write rows and outbox events, never commit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession

from complaints.complaint.schemas import ComplaintCreate
from complaints.errors import ComplaintNotFound, OutsideRegion
from complaints.events import COMPLAINT_FILED, COMPLAINT_TOPIC, SOURCE, ComplaintFiled
from complaints.models import Complaint, audit_log
from shared.audit import read_in_region
from shared.auth import Caller
from shared.outbox import add_event

__all__ = ["FIRST_RESPONSE_DUE", "file_complaint", "read_complaint"]

# LAPOR! (SP4N) service level: a first response within 3 days of filing.
FIRST_RESPONSE_DUE = timedelta(days=3)


async def file_complaint(
    session: AsyncSession, *, complaint_in: ComplaintCreate, caller: Caller
) -> Complaint:
    if not caller.may_see(complaint_in.region_code):
        raise OutsideRegion(f"region {complaint_in.region_code} is outside your regions")
    complaint = Complaint(
        id=uuid.uuid4(),
        **complaint_in.model_dump(),
        status="received",
        # Counted from the row's own created_at (same transaction clock).
        due_at=func.now() + FIRST_RESPONSE_DUE,
        filed_by_agency=caller.agency,
    )
    session.add(complaint)
    await session.flush()
    await session.refresh(complaint)
    await add_event(
        session,
        source=SOURCE,
        topic=COMPLAINT_TOPIC,
        key=str(complaint.id),
        type=COMPLAINT_FILED,
        data=ComplaintFiled(
            complaint_id=complaint.id,
            category=complaint_in.category,
            region_code=complaint.region_code,
            person_id=complaint.person_id,
            summary=complaint.summary,
            channel=complaint_in.channel,
            due_at=complaint.due_at,
        ),
    )
    return complaint


async def read_complaint(
    session: AsyncSession, *, complaint_id: uuid.UUID, caller: Caller, purpose: str
) -> Complaint:
    return await read_in_region(
        session,
        audit_log,
        Complaint,
        complaint_id,
        caller=caller,
        purpose=purpose,
        region_of=lambda complaint: complaint.region_code,
        resource_type="complaint",
        not_found=ComplaintNotFound,
    )
