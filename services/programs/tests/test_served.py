"""The programs service served by uvicorn on a loopback port, tried as a partner's client would:
a 2xx means committed (see the registry's ``test_served.py`` for why over TCP, and why the
test commits are made slow)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from programs.settings import ProgramsSettings
from shared.testing import ServedApi, commit_fault, reads_missing_their_write, retries_not_replayed

from .factories import known_people

# Only this agency's enrolments commit slowly, as on a busy disk; the rest of the suite is not.
SLOW_AGENCY = "UJI-LAMBAT"
CLIENTS, ROUNDS = 8, 40


@pytest_asyncio.fixture
async def slow_commits(programs_settings: ProgramsSettings) -> AsyncIterator[None]:
    async with commit_fault(
        programs_settings,
        table="enrolment",
        when=f"NEW.enrolled_by_agency = '{SLOW_AGENCY}'",
        action="PERFORM pg_sleep(0.05)",
    ):
        yield


async def _enrolments(settings: ProgramsSettings) -> Callable[[], dict[str, Any]]:
    """Bodies that each enrol another known person (one enrolment per person and programme)."""
    people = await known_people(settings, CLIENTS * ROUNDS)
    return lambda: {"person_id": people.pop(), "programme": "PKH"}


@pytest.mark.usefixtures("slow_commits")
class TestAnswersAfterCommit:
    async def test_an_enrolment_is_readable_at_once(
        self,
        programs_api: ServedApi,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        def read(created: dict[str, Any]) -> str:
            return f"/v1/enrolments/{created['id']}"

        misses = await reads_missing_their_write(
            programs_api,
            headers=auth_header(agency=SLOW_AGENCY),
            create="/v1/enrolments",
            body=await _enrolments(programs_settings),
            read=read,
            clients=CLIENTS,
            rounds=ROUNDS,
        )
        assert misses == []

    async def test_a_retry_right_after_the_answer_replays_it(
        self,
        programs_api: ServedApi,
        programs_settings: ProgramsSettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        wrong = await retries_not_replayed(
            programs_api,
            headers=auth_header(agency=SLOW_AGENCY),
            create="/v1/enrolments",
            body=await _enrolments(programs_settings),
            clients=CLIENTS,
            rounds=ROUNDS,
        )
        assert wrong == []
