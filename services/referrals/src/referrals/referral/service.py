"""Referrals use cases: take the session, write rows and outbox events, never commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from referrals.errors import InvalidDueDate, OutsideRegion, ReferralNotFound
from referrals.events import REFERRAL_CREATED, REFERRAL_TOPIC, SOURCE, ReferralCreated, ServiceType
from referrals.models import Referral, audit_log
from referrals.referral.schemas import ReferralCreate
from shared.audit import read_in_region
from shared.auth import Caller
from shared.outbox import add_event

__all__ = [
    "DEFAULT_DUE",
    "MAX_DUE",
    "create_referral",
    "open_referral_for_complaint",
    "read_referral",
]

DEFAULT_DUE = timedelta(days=14)
MAX_DUE = timedelta(days=366)


async def create_referral(
    session: AsyncSession, *, referral_in: ReferralCreate, caller: Caller
) -> Referral:
    if not caller.may_see(referral_in.region_code):
        raise OutsideRegion(f"village {referral_in.region_code} is outside your regions")
    if referral_in.due_at is not None:
        now = datetime.now(UTC)
        if referral_in.due_at <= now:
            raise InvalidDueDate("due_at must be in the future", field="due_at")
        if referral_in.due_at > now + MAX_DUE:
            raise InvalidDueDate("due_at must be within a year", field="due_at")
    return await _open_referral(
        session,
        person_id=referral_in.person_id,
        region_code=referral_in.region_code,
        service_type=referral_in.service_type,
        to_agency=referral_in.to_agency,
        reason=referral_in.reason,
        due_at=referral_in.due_at,
        referred_by_agency=caller.agency,
    )


async def open_referral_for_complaint(
    session: AsyncSession,
    *,
    complaint_id: uuid.UUID,
    person_id: uuid.UUID,
    village_code: str,
    summary: str,
) -> Referral | None:
    """Refer a person whose complaint says they could not get a service to the regency's
    social office (Dinas Sosial), once per complaint."""
    if (
        await session.scalar(select(Referral.id).where(Referral.complaint_id == complaint_id))
        is not None
    ):
        return None
    return await _open_referral(
        session,
        person_id=person_id,
        region_code=village_code,
        service_type="other",
        to_agency=f"DINSOS-{village_code[:4]}",
        reason=summary,
        due_at=None,
        referred_by_agency="SIMPUL-COMPLAINTS",
        complaint_id=complaint_id,
    )


async def _open_referral(
    session: AsyncSession,
    *,
    person_id: uuid.UUID,
    region_code: str,
    service_type: ServiceType,
    to_agency: str,
    reason: str,
    due_at: datetime | None,
    referred_by_agency: str,
    complaint_id: uuid.UUID | None = None,
) -> Referral:
    referral = Referral(
        id=uuid.uuid4(),
        person_id=person_id,
        region_code=region_code,
        service_type=service_type,
        to_agency=to_agency,
        reason=reason,
        # The default deadline counts from the row's own created_at (same transaction clock).
        due_at=due_at if due_at is not None else func.now() + DEFAULT_DUE,
        status="sent",
        referred_by_agency=referred_by_agency,
        complaint_id=complaint_id,
    )
    session.add(referral)
    await session.flush()
    await session.refresh(referral)
    await add_event(
        session,
        source=SOURCE,
        topic=REFERRAL_TOPIC,
        key=str(referral.id),
        type=REFERRAL_CREATED,
        data=ReferralCreated(
            referral_id=referral.id,
            person_id=referral.person_id,
            service_type=service_type,
            region_code=referral.region_code,
            to_agency=referral.to_agency,
            due_at=referral.due_at,
        ),
    )
    return referral


async def read_referral(
    session: AsyncSession, *, referral_id: uuid.UUID, caller: Caller, purpose: str
) -> Referral:
    return await read_in_region(
        session,
        audit_log,
        Referral,
        referral_id,
        caller=caller,
        purpose=purpose,
        region_of=lambda referral: referral.region_code,
        resource_type="referral",
        not_found=ReferralNotFound,
    )
