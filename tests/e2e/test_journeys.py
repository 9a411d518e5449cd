"""Journeys across services, through HTTP and the real broker."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db import sync_url
from shared.observability import JsonFormatter, new_traceparent
from shared.testing import eventually, sequence_number

from .conftest import Simpul

VILLAGE = "1771011001"  # Pagar Dewa, Selebar, Kota Bengkulu


def person_body() -> dict[str, Any]:
    n = sequence_number()
    born = date(1950, 1, 1) + timedelta(days=n * 7919 % 22_000)
    sex = "MF"[n % 2]
    day = born.day + (40 if sex == "F" else 0)
    return {
        "nik": f"177101{day:02d}{born:%m%y}{n % 9999 + 1:04d}",
        "full_name": "Warga E2E",
        "birth_date": born.isoformat(),
        "sex": sex,
        "village_code": VILLAGE,
    }


async def rows(settings: Any, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(sync_url(settings.database_url))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def register(simpul: Simpul, headers: dict[str, str]) -> dict[str, Any]:
    response = await simpul.registry.client.post("/v1/persons", json=person_body(), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def fact_of(simpul: Simpul, person_id: str, headers: dict[str, str]) -> dict[str, Any] | None:
    response = await simpul.programs.client.get(
        f"/v1/person-facts/{person_id}", params={"purpose": "journey check"}, headers=headers
    )
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


async def household_fact_of(
    simpul: Simpul, household_id: str, headers: dict[str, str]
) -> dict[str, Any] | None:
    response = await simpul.programs.client.get(
        f"/v1/household-facts/{household_id}", params={"purpose": "journey check"}, headers=headers
    )
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


class TestRegistryToPrograms:
    async def test_programs_learns_of_a_registered_family_and_can_enrol_them(
        self, simpul: Simpul, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        card = await simpul.registry.client.post(
            "/v1/households",
            json={
                "kk": f"177101{date(2010, 1, 1) + timedelta(days=sequence_number() % 5000):%d%m%y}"
                f"{sequence_number() % 9999 + 1:04d}",
                "village_code": VILLAGE,
                "address": "Jl. Merapi No. 12, RT 003 RW 001",
                "decile": 2,
            },
            headers=headers,
        )
        assert card.status_code == 201, card.text
        response = await simpul.registry.client.post(
            "/v1/persons",
            json={**person_body(), "household_id": card.json()["id"], "relationship": "head"},
            headers=headers,
        )
        assert response.status_code == 201, response.text
        person = response.json()
        fact = await eventually(
            lambda: fact_of(simpul, person["id"], headers), what="programs' read model updated"
        )
        assert fact["household_id"] == card.json()["id"]
        # The card's own event reached programs too: PKH reads its decile.
        await eventually(
            lambda: household_fact_of(simpul, card.json()["id"], headers),
            what="programs knows the card",
        )
        assert (fact["village_code"], fact["birth_date"], fact["sex"]) == (
            VILLAGE,
            person["birth_date"],
            person["sex"],
        )
        enrolment = await simpul.programs.client.post(
            "/v1/enrolments", json={"person_id": person["id"], "programme": "PKH"}, headers=headers
        )
        assert enrolment.status_code == 201, enrolment.text
        again = await simpul.programs.client.post(
            "/v1/enrolments", json={"person_id": person["id"], "programme": "PKH"}, headers=headers
        )
        assert again.status_code == 409

    async def test_the_trace_id_follows_the_request_into_the_consumer(
        self,
        simpul: Simpul,
        auth_header: Callable[..., dict[str, str]],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The request's trace id is staged with the event, and the programs consumer handles
        that event under it: its ``consumer.event.handled`` log line carries the same trace id
        (the JSON formatter reads the trace context when the line is written)."""
        caplog.set_level(logging.INFO, logger="shared.consumer")
        caplog.handler.setFormatter(JsonFormatter())
        headers = auth_header()
        traceparent = new_traceparent()
        trace_id = traceparent.split("-")[1]
        response = await simpul.registry.client.post(
            "/v1/persons", json=person_body(), headers={**headers, "traceparent": traceparent}
        )
        assert response.status_code == 201, response.text
        assert response.headers["traceparent"].split("-")[1] == trace_id
        person_id = response.json()["id"]
        staged = await rows(
            simpul.settings["registry"],
            "SELECT envelope->>'id' AS id, envelope->>'traceparent' AS tp FROM outbox_event "
            "WHERE key = $1",
            person_id,
        )
        assert staged[0]["tp"].split("-")[1] == trace_id
        consumer = simpul.settings["programs"].kafka_group_prefix + "programs"

        async def handled() -> list[dict[str, Any]]:
            lines = (json.loads(line) for line in caplog.text.splitlines() if line.startswith("{"))
            return [
                line
                for line in lines
                if line.get("event") == "consumer.event.handled"
                and line.get("consumer") == consumer
                and line.get("event_id") == staged[0]["id"]
            ]

        [line] = await eventually(handled, what="programs' consumer handled the event")
        assert line.get("trace_id") == trace_id, line

    async def test_programs_follows_a_death_recorded_in_the_registry(
        self, simpul: Simpul, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        person = await register(simpul, headers)
        await eventually(
            lambda: fact_of(simpul, person["id"], headers), what="programs learns of the person"
        )
        died = await simpul.registry.client.post(
            f"/v1/persons/{person['id']}/death",
            json={"death_date": date.today().isoformat(), "source": "dukcapil"},
            headers=headers,
        )
        assert died.status_code == 200, died.text

        async def deceased() -> dict[str, Any] | None:
            fact = await fact_of(simpul, person["id"], headers)
            return fact if fact and fact["status"] == "deceased" else None

        await eventually(deceased, what="programs' read model follows the death")

    async def test_an_unknown_person_cannot_be_enrolled(
        self, simpul: Simpul, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await simpul.programs.client.post(
            "/v1/enrolments",
            json={"person_id": "00000000-0000-4000-8000-000000000000", "programme": "BLT"},
            headers=auth_header(),
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/person-not-known")


class TestReferralsToPrograms:
    async def test_a_referral_reaches_the_programs_read_model(
        self, simpul: Simpul, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        person = await register(simpul, headers)
        await eventually(lambda: fact_of(simpul, person["id"], headers), what="person fact")
        referral = await simpul.referrals.client.post(
            "/v1/referrals",
            json={
                "person_id": person["id"],
                "region_code": VILLAGE,
                "service_type": "health_check",
                "to_agency": "DINKES-1771",
                "reason": "Health check before Sekolah Rakyat entry",
            },
            headers=headers,
        )
        assert referral.status_code == 201, referral.text

        async def referral_counted() -> bool:
            fact = await fact_of(simpul, person["id"], headers)
            return fact is not None and fact["referral_count"] == 1

        await eventually(referral_counted, what="referral counted by programs")


class TestComplaintsToRegistry:
    async def test_a_data_correction_complaint_opens_a_correction_request(
        self, simpul: Simpul, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = auth_header()
        person = await register(simpul, headers)
        complaint = await simpul.complaints.client.post(
            "/v1/complaints",
            json={
                "channel": "walk_in",
                "category": "data_correction",
                "region_code": VILLAGE,
                "person_id": person["id"],
                "summary": "Birth date on the family card is wrong",
            },
            headers=headers,
        )
        assert complaint.status_code == 201, complaint.text
        complaint_id = complaint.json()["id"]

        async def opened() -> list[asyncpg.Record]:
            return await rows(
                simpul.settings["registry"],
                "SELECT person_id::text AS person_id, status FROM correction_request "
                "WHERE complaint_id = $1::uuid",
                complaint_id,
            )

        found = await eventually(opened, what="correction request in the registry")
        assert [tuple(r) for r in found] == [(person["id"], "open")]


class TestOperations:
    async def test_every_service_is_ready_and_exports_metrics(self, simpul: Simpul) -> None:
        for service in (simpul.registry, simpul.programs, simpul.referrals, simpul.complaints):
            client: httpx.AsyncClient = service.client
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
            metrics = await client.get("/metrics")
            assert "simpul_http_requests_total" in metrics.text
