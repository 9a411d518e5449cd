"""Referrals' use cases called directly, on a session rolled back after each test: the rules of
a referral, and of one opened from a complaint, without HTTP or the broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from referrals.errors import InvalidDueDate, OutsideRegion, ReferralNotFound
from referrals.events import REFERRAL_CREATED
from referrals.referral.schemas import ReferralCreate
from referrals.referral.service import (
    DEFAULT_DUE,
    create_referral,
    open_referral_for_complaint,
    read_referral,
)
from shared.testing import make_caller, stable_uuid, staged_event_types

from .factories import OTHER_REGENCY_VILLAGE, VILLAGE, referral_body

SOCIAL_OFFICE = make_caller(agency="DINSOS-1771", scopes=["referrals:read", "referrals:write"])


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


def referral_in(seed: str, **overrides: Any) -> ReferralCreate:
    return ReferralCreate.model_validate(
        referral_body(person_id=str(stable_uuid(seed)), **overrides)
    )


class TestCreateReferral:
    async def test_refers_for_fourteen_days_and_stages_the_event(
        self, referrals_session: AsyncSession, seed: str
    ) -> None:
        referral = await create_referral(
            referrals_session, referral_in=referral_in(seed), caller=SOCIAL_OFFICE
        )
        assert (referral.status, referral.referred_by_agency, referral.person_id) == (
            "sent",
            "DINSOS-1771",
            stable_uuid(seed),
        )
        assert referral.due_at - referral.created_at == DEFAULT_DUE
        assert await staged_event_types(referrals_session, key=str(referral.id)) == [
            REFERRAL_CREATED
        ]

    @pytest.mark.parametrize(
        ("due_in", "reason"),
        [(timedelta(hours=-1), "in the future"), (timedelta(days=367), "within a year")],
    )
    async def test_a_due_date_outside_the_window_is_refused(
        self, referrals_session: AsyncSession, seed: str, due_in: timedelta, reason: str
    ) -> None:
        due_at = datetime.now(UTC) + due_in
        with pytest.raises(InvalidDueDate, match=reason):
            await create_referral(
                referrals_session,
                referral_in=referral_in(seed, due_at=due_at.isoformat()),
                caller=SOCIAL_OFFICE,
            )

    async def test_a_village_outside_the_callers_regions_is_refused(
        self, referrals_session: AsyncSession, seed: str
    ) -> None:
        regional = make_caller(scopes=["referrals:write"], regions=[OTHER_REGENCY_VILLAGE[:4]])
        with pytest.raises(OutsideRegion):
            await create_referral(referrals_session, referral_in=referral_in(seed), caller=regional)


class TestOpenReferralForComplaint:
    async def test_refers_to_the_regencys_social_office_once_per_complaint(
        self, referrals_session: AsyncSession, seed: str
    ) -> None:
        complaint = {
            "complaint_id": stable_uuid(f"{seed}/complaint"),
            "person_id": stable_uuid(seed),
            "village_code": VILLAGE,
            "summary": "Refused at the puskesmas although the family holds PBI-JK",
        }
        referral = await open_referral_for_complaint(referrals_session, **complaint)
        assert referral is not None
        assert (referral.to_agency, referral.service_type, referral.referred_by_agency) == (
            "DINSOS-1771",
            "other",
            "SIMPUL-COMPLAINTS",
        )
        assert await open_referral_for_complaint(referrals_session, **complaint) is None


class TestReadReferral:
    async def test_a_read_is_audited_with_its_purpose(
        self, referrals_session: AsyncSession, seed: str
    ) -> None:
        referral = await create_referral(
            referrals_session, referral_in=referral_in(seed), caller=SOCIAL_OFFICE
        )
        read = await read_referral(
            referrals_session, referral_id=referral.id, caller=SOCIAL_OFFICE, purpose="follow-up"
        )
        assert read is referral
        audited = await referrals_session.execute(
            text("SELECT agency, purpose FROM audit_log WHERE resource_id = :id"),
            {"id": str(referral.id)},
        )
        assert [tuple(row) for row in audited] == [("DINSOS-1771", "follow-up")]

    async def test_a_referral_outside_the_callers_regions_reads_as_missing(
        self, referrals_session: AsyncSession, seed: str
    ) -> None:
        referral = await create_referral(
            referrals_session, referral_in=referral_in(seed), caller=SOCIAL_OFFICE
        )
        regional = make_caller(scopes=["referrals:read"], regions=[OTHER_REGENCY_VILLAGE[:4]])
        with pytest.raises(ReferralNotFound):
            await read_referral(
                referrals_session, referral_id=referral.id, caller=regional, purpose="follow-up"
            )
