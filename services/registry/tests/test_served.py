"""The registry served by uvicorn on a loopback port, tried as a partner agency's client would.

A 2xx means the change is committed: the next request, on any connection, sees it. These tests
run against ``python -m registry api`` over TCP because in-process ASGI waits for the whole
request, dependency teardown included, and so cannot see an answer sent before its commit.

The test database does not wait for its disk, so a commit there takes microseconds and an answer
sent before it would rarely be caught. ``commit_fault`` gives the test persons' commits the
50 ms of a busy disk; an answer that left before its commit is then read stale every time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from unittest.mock import ANY

import asyncpg
import httpx
import pytest
import pytest_asyncio

from registry.settings import RegistrySettings
from shared.db import sync_url
from shared.testing import ServedApi, commit_fault, eventually, fetch, retries_not_replayed

from .factories import person_body

PURPOSE = {"purpose": "read-after-write check"}
CLIENTS = 8
# Bengkulu Tengah (1709), a regency a Kota Bengkulu (1771) token does not cover.
OTHER_REGENCY_VILLAGE = "1709012001"
SLOW = "Warga Lambat"
REFUSED = "Ditolak Saat Commit"


def slow_person() -> dict[str, object]:
    return person_body(full_name=SLOW)


async def _in_parallel(run: Callable[[], Awaitable[None]]) -> None:
    """``run`` by CLIENTS clients at once. Each writes on one connection and reads on another,
    as a front end that posts and a screen that polls do: uvicorn finishes one request of a
    connection before it reads the next, so the writing connection alone could not tell."""
    await asyncio.gather(*(run() for _ in range(CLIENTS)))


async def _registered(
    writer: httpx.AsyncClient,
    reader: httpx.AsyncClient,
    body: dict[str, object],
    headers: dict[str, str] | None = None,
) -> str:
    """A new person's id once it reads back: the update tests then test updates alone."""
    created = await writer.post("/v1/persons", json=body, headers=headers)
    assert created.status_code == 201, created.text
    person_id: str = created.json()["id"]

    async def readable() -> bool:
        read = await reader.get(f"/v1/persons/{person_id}", params=PURPOSE, headers=headers)
        return read.status_code == 200

    await eventually(readable, what="the new person reads back")
    return person_id


@pytest_asyncio.fixture
async def slow_commits(registry_settings: RegistrySettings) -> AsyncIterator[None]:
    async with commit_fault(
        registry_settings,
        table="person",
        when=f"NEW.full_name LIKE '{SLOW}%'",
        action="PERFORM pg_sleep(0.05)",
    ):
        yield


@pytest.mark.usefixtures("slow_commits")
class TestAnswersAfterCommit:
    async def test_a_created_person_is_readable_at_once(
        self, registry_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        misses: list[str] = []

        async def client() -> None:
            async with (
                registry_api.client(headers=headers) as writer,
                registry_api.client(headers=headers) as reader,
            ):
                for _ in range(40):
                    body = slow_person()
                    created = await writer.post("/v1/persons", json=body)
                    assert created.status_code == 201, created.text
                    person_id = created.json()["id"]
                    by_id = await reader.get(f"/v1/persons/{person_id}", params=PURPOSE)
                    by_nik = await reader.get(f"/v1/persons/by-nik/{body['nik']}", params=PURPOSE)
                    misses.extend(
                        f"{read.request.url.path}: {read.status_code}"
                        for read in (by_id, by_nik)
                        if read.status_code != 200
                    )

        await _in_parallel(client)
        assert misses == []

    async def test_an_update_is_read_back_at_once(
        self, registry_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        stale: list[tuple[str, str]] = []

        async def client() -> None:
            async with (
                registry_api.client(headers=headers) as writer,
                registry_api.client(headers=headers) as reader,
            ):
                person_id = await _registered(writer, reader, slow_person())
                for round_ in range(30):
                    name = f"{SLOW} Ke {round_}"
                    patched = await writer.patch(
                        f"/v1/persons/{person_id}", json={"full_name": name}
                    )
                    assert patched.status_code == 200, patched.text
                    read = await reader.get(f"/v1/persons/{person_id}", params=PURPOSE)
                    if read.json()["full_name"] != name:
                        stale.append((name, read.json()["full_name"]))

        await _in_parallel(client)
        assert stale == []

    async def test_a_moved_person_is_at_once_outside_the_old_region(
        self, registry_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        national = auth_header()
        kota_bengkulu = auth_header(regions=["1771"])
        leaks: list[str] = []

        async def client() -> None:
            async with registry_api.client() as writer, registry_api.client() as reader:
                for _ in range(8):
                    body = slow_person()
                    person_id = await _registered(writer, reader, body, headers=national)
                    moved = await writer.post(
                        f"/v1/persons/{person_id}/move",
                        json={"village_code": OTHER_REGENCY_VILLAGE},
                        headers=national,
                    )
                    assert moved.status_code == 200, moved.text
                    for path in (
                        f"/v1/persons/{person_id}",
                        f"/v1/persons/{person_id}/versions",
                        f"/v1/persons/by-nik/{body['nik']}",
                    ):
                        read = await reader.get(path, params=PURPOSE, headers=kota_bengkulu)
                        if read.status_code != 404:
                            leaks.append(f"{path}: {read.status_code} {read.text[:80]}")

        await _in_parallel(client)
        assert leaks == []

    async def test_a_retry_right_after_the_answer_replays_it(
        self, registry_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        wrong = await retries_not_replayed(
            registry_api, headers=auth_header(), create="/v1/persons", body=slow_person
        )
        assert wrong == []


SLOW_AUDIT = "audit before the answer"


@pytest_asyncio.fixture
async def slow_audits(registry_settings: RegistrySettings) -> AsyncIterator[None]:
    async with commit_fault(
        registry_settings,
        table="audit_log",
        when=f"NEW.purpose LIKE '{SLOW_AUDIT}%'",
        action="PERFORM pg_sleep(0.05)",
    ):
        yield


@pytest.mark.usefixtures("slow_audits")
async def test_a_read_is_in_the_audit_trail_when_its_answer_arrives(
    registry_api: ServedApi,
    registry_settings: RegistrySettings,
    auth_header: Callable[..., dict[str, str]],
) -> None:
    """By id and its versions (routes) and by NIK (the hot path): the audit rows commit before
    the answer."""
    headers = auth_header()
    unaudited: list[str] = []
    # One connection, opened beforehand: opening one per check would take longer than the
    # commit it is meant to catch.
    audit_trail = await asyncpg.connect(sync_url(registry_settings.database_url))
    try:
        async with registry_api.client(headers=headers) as http:
            body = person_body()
            person_id = (await http.post("/v1/persons", json=body)).json()["id"]
            for round_ in range(20):
                for path in (
                    f"/v1/persons/{person_id}",
                    f"/v1/persons/{person_id}/versions",
                    f"/v1/persons/by-nik/{body['nik']}",
                ):
                    purpose = f"{SLOW_AUDIT} {round_} {path}"
                    read = await http.get(path, params={"purpose": purpose})
                    assert read.status_code == 200, read.text
                    rows = await audit_trail.fetch(
                        "SELECT 1 FROM audit_log WHERE purpose = $1", purpose
                    )
                    if len(rows) != 1:
                        unaudited.append(purpose)
    finally:
        await audit_trail.close()
    assert unaudited == []


@pytest_asyncio.fixture
async def refused_commits(registry_settings: RegistrySettings) -> AsyncIterator[None]:
    async with commit_fault(
        registry_settings,
        table="person",
        when=f"NEW.full_name = '{REFUSED}'",
        action="RAISE EXCEPTION 'refused at commit' USING ERRCODE = 'check_violation'",
    ):
        yield


@pytest.mark.usefixtures("refused_commits")
class TestFailedCommit:
    async def test_is_a_problem_and_stores_nothing(
        self,
        registry_api: ServedApi,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        body = person_body(full_name=REFUSED)
        key = str(uuid.uuid4())
        count = (
            "SELECT (SELECT count(*) FROM person WHERE nik = $1) AS persons, "
            "(SELECT count(*) FROM idempotency_key WHERE key = $2) AS keys, "
            "(SELECT count(*) FROM outbox_event) AS events"
        )
        before = await fetch(registry_settings, count, body["nik"], key)
        async with registry_api.client(headers=auth_header()) as http:
            answer = await http.post("/v1/persons", json=body, headers={"Idempotency-Key": key})
            retry = await http.post("/v1/persons", json=body, headers={"Idempotency-Key": key})
            read = await http.get(f"/v1/persons/by-nik/{body['nik']}", params=PURPOSE)
        after = await fetch(registry_settings, count, body["nik"], key)
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert retry.status_code == 409, "a failed commit keeps no Idempotency-Key to replay"
        assert read.status_code == 404
        assert dict(after[0]) == dict(before[0]) == {"persons": 0, "keys": 0, "events": ANY}

    async def test_other_writes_go_on(
        self, registry_api: ServedApi, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        async with registry_api.client(headers=auth_header()) as http:
            refused = await http.post("/v1/persons", json=person_body(full_name=REFUSED))
            accepted = await http.post("/v1/persons", json=person_body())
        assert (refused.status_code, accepted.status_code) == (409, 201)
