"""Complaints' use cases called directly, on a session rolled back after each test: filing and
reading a complaint without HTTP, leaving no row behind."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from complaints.complaint.schemas import ComplaintCreate
from complaints.complaint.service import FIRST_RESPONSE_DUE, file_complaint, read_complaint
from complaints.errors import ComplaintNotFound, OutsideRegion
from complaints.events import COMPLAINT_FILED
from shared.testing import make_caller, stable_uuid, staged_event_types

from .factories import OTHER_REGENCY_VILLAGE, complaint_body

SOCIAL_OFFICE = make_caller(agency="DINSOS-1771", scopes=["complaints:read", "complaints:write"])
ELSEWHERE = make_caller(
    scopes=["complaints:read", "complaints:write"], regions=[OTHER_REGENCY_VILLAGE[:4]]
)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> str:
    return str(request.node.nodeid)


def complaint_in(**overrides: Any) -> ComplaintCreate:
    return ComplaintCreate.model_validate(complaint_body(**overrides))


class TestFileComplaint:
    async def test_files_with_a_first_response_due_and_stages_the_event(
        self, complaints_session: AsyncSession, seed: str
    ) -> None:
        complaint = await file_complaint(
            complaints_session,
            complaint_in=complaint_in(person_id=str(stable_uuid(seed))),
            caller=SOCIAL_OFFICE,
        )
        assert (complaint.status, complaint.filed_by_agency, complaint.person_id) == (
            "received",
            "DINSOS-1771",
            stable_uuid(seed),
        )
        assert complaint.due_at - complaint.created_at == FIRST_RESPONSE_DUE
        assert await staged_event_types(complaints_session, key=str(complaint.id)) == [
            COMPLAINT_FILED
        ]

    @pytest.mark.parametrize("region_code", ["17", "1771", "177101", "1771011001"])
    async def test_any_level_of_region_may_be_concerned(
        self, complaints_session: AsyncSession, region_code: str
    ) -> None:
        complaint = await file_complaint(
            complaints_session,
            complaint_in=complaint_in(region_code=region_code),
            caller=SOCIAL_OFFICE,
        )
        assert (complaint.region_code, complaint.person_id) == (region_code, None)

    async def test_a_region_outside_the_callers_is_refused(
        self, complaints_session: AsyncSession
    ) -> None:
        with pytest.raises(OutsideRegion):
            await file_complaint(complaints_session, complaint_in=complaint_in(), caller=ELSEWHERE)


class TestReadComplaint:
    async def test_a_read_is_audited_with_its_purpose(
        self, complaints_session: AsyncSession
    ) -> None:
        complaint = await file_complaint(
            complaints_session, complaint_in=complaint_in(), caller=SOCIAL_OFFICE
        )
        read = await read_complaint(
            complaints_session, complaint_id=complaint.id, caller=SOCIAL_OFFICE, purpose="triage"
        )
        assert read is complaint
        audited = await complaints_session.execute(
            text("SELECT agency, purpose FROM audit_log WHERE resource_id = :id"),
            {"id": str(complaint.id)},
        )
        assert [tuple(row) for row in audited] == [("DINSOS-1771", "triage")]

    async def test_a_complaint_outside_the_callers_regions_reads_as_missing(
        self, complaints_session: AsyncSession
    ) -> None:
        complaint = await file_complaint(
            complaints_session, complaint_in=complaint_in(), caller=SOCIAL_OFFICE
        )
        with pytest.raises(ComplaintNotFound):
            await read_complaint(
                complaints_session, complaint_id=complaint.id, caller=ELSEWHERE, purpose="triage"
            )
