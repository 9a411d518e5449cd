"""Correction requests, opened from ``complaints.complaint.filed.v1`` events."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from registry.models import CorrectionRequest, Person

__all__ = ["open_correction_request"]


async def open_correction_request(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    person_id: uuid.UUID | None,
    region_code: str,
    summary: str,
) -> None:
    known = person_id is not None and await session.get(Person, person_id) is not None
    session.add(
        CorrectionRequest(
            complaint_id=complaint_id,
            person_id=person_id if known else None,
            region_code=region_code,
            summary=summary,
        )
    )
