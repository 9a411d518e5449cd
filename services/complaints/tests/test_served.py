"""The complaints service served by uvicorn on a loopback port, tried as a partner's client would:
a 2xx means committed (see the registry's ``test_served.py`` for why over TCP, and why the
test commits are made slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from complaints.settings import ComplaintsSettings
from shared.testing import ServedApi, commit_fault, reads_missing_their_write, retries_not_replayed

from .factories import complaint_body

# Only this agency's complaints commit slowly, as on a busy disk; the rest of the suite not.
SLOW_AGENCY = "UJI-LAMBAT"


@pytest_asyncio.fixture
async def slow_commits(complaints_settings: ComplaintsSettings) -> AsyncIterator[None]:
    async with commit_fault(
        complaints_settings,
        table="complaint",
        when=f"NEW.filed_by_agency = '{SLOW_AGENCY}'",
        action="PERFORM pg_sleep(0.05)",
    ):
        yield


@pytest.mark.usefixtures("slow_commits")
class TestAnswersAfterCommit:
    async def test_a_filed_complaint_is_readable_at_once(
        self, complaints_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        def read(created: dict[str, Any]) -> str:
            return f"/v1/complaints/{created['id']}"

        misses = await reads_missing_their_write(
            complaints_api,
            headers=auth_header(agency=SLOW_AGENCY),
            create="/v1/complaints",
            body=complaint_body,
            read=read,
            params={"purpose": "read-after-write check"},
        )
        assert misses == []

    async def test_a_retry_right_after_the_answer_replays_it(
        self, complaints_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        wrong = await retries_not_replayed(
            complaints_api,
            headers=auth_header(agency=SLOW_AGENCY),
            create="/v1/complaints",
            body=complaint_body,
        )
        assert wrong == []
