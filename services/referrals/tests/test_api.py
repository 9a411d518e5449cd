"""Referrals over HTTP: auth, validation, deadlines, idempotency, audit, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from referrals.settings import ReferralsSettings
from shared.testing import RunningService, eventually, fetch, without_instance

from .factories import OTHER_REGENCY_VILLAGE, VILLAGE, referral_body

PROBLEM = "application/problem+json"
PURPOSE = {"purpose": "case follow-up"}
AuthHeader = Callable[..., dict[str, str]]


class TestCreateReferral:
    async def test_refers_and_stages_an_event(
        self,
        referrals_service: RunningService,
        referrals_settings: ReferralsSettings,
        auth_header: AuthHeader,
    ) -> None:
        body = referral_body()
        response = await referrals_service.client.post(
            "/v1/referrals", json=body, headers=auth_header(agency="DINSOS-1771")
        )
        assert response.status_code == 201, response.text
        referral = response.json()
        assert (referral["status"], referral["referred_by_agency"]) == ("sent", "DINSOS-1771")
        rows = await fetch(
            referrals_settings,
            "SELECT topic, event_type, envelope->'data'->>'person_id' AS person_id"
            " FROM outbox_event WHERE key = $1",
            referral["id"],
        )
        assert [(r["topic"], r["event_type"], r["person_id"]) for r in rows] == [
            ("referrals.referral.v1", "referrals.referral.created.v1", body["person_id"])
        ]

    async def test_due_at_defaults_to_fourteen_days(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=auth_header()
        )
        referral = response.json()
        due_at = datetime.fromisoformat(referral["due_at"])
        assert due_at - datetime.fromisoformat(referral["created_at"]) == timedelta(days=14)

    async def test_given_due_at_is_kept(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        due_at = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(due_at=due_at.isoformat()), headers=auth_header()
        )
        assert response.status_code == 201, response.text
        assert datetime.fromisoformat(response.json()["due_at"]) == due_at

    async def test_relay_publishes_the_event(
        self,
        referrals_service: RunningService,
        referrals_settings: ReferralsSettings,
        auth_header: AuthHeader,
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=auth_header()
        )
        referral_id = response.json()["id"]

        async def sent() -> bool:
            rows = await fetch(
                referrals_settings,
                "SELECT 1 FROM outbox_event WHERE key = $1 AND sent_at IS NOT NULL",
                referral_id,
            )
            return bool(rows)

        await eventually(sent, what="referral event published")

    @pytest.mark.parametrize(
        ("due_in", "reason"),
        [
            (timedelta(hours=-1), "in the future"),
            (timedelta(days=400), "within a year"),
        ],
    )
    async def test_due_at_outside_the_window_is_422(
        self,
        referrals_service: RunningService,
        auth_header: AuthHeader,
        due_in: timedelta,
        reason: str,
    ) -> None:
        due_at = datetime.now(UTC) + due_in
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(due_at=due_at.isoformat()), headers=auth_header()
        )
        assert response.status_code == 422
        problem = response.json()
        assert problem["type"].endswith("/invalid-due-date")
        assert problem["field"] == "due_at"
        assert reason in problem["detail"]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"person_id": "not-a-uuid"}, "body.person_id"),
            ({"person_id": 42}, "body.person_id"),
            ({"region_code": 1771011001}, "body.region_code"),
            ({"region_code": "1771"}, "body.region_code"),
            ({"service_type": "haircut"}, "body.service_type"),
            ({"to_agency": "dinkes kota"}, "body.to_agency"),
            ({"reason": ""}, "body.reason"),
            ({"reason": "   "}, "body.reason"),
            ({"reason": "x" * 2001}, "body.reason"),
            ({"due_at": "next tuesday"}, "body.due_at"),
            ({"due_at": "2030-01-01T10:00:00"}, "body.due_at"),
            ({"favourite_colour": "red"}, "body.favourite_colour"),
        ],
    )
    async def test_bad_fields_are_named(
        self,
        referrals_service: RunningService,
        auth_header: AuthHeader,
        change: dict[str, object],
        field: str,
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json={**referral_body(), **change}, headers=auth_header()
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert field in [error["field"] for error in response.json()["errors"]]

    @pytest.mark.parametrize(
        "missing", ["person_id", "region_code", "service_type", "to_agency", "reason"]
    )
    async def test_missing_fields_are_named(
        self, referrals_service: RunningService, auth_header: AuthHeader, missing: str
    ) -> None:
        body = referral_body()
        del body[missing]
        response = await referrals_service.client.post(
            "/v1/referrals", json=body, headers=auth_header()
        )
        assert response.status_code == 422
        assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
            (f"body.{missing}", "missing")
        ]

    async def test_malformed_json_is_400(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals",
            content=b'{"person_id": "0b7f',
            headers={**auth_header(), "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["type"].endswith("/malformed-body")

    async def test_oversized_body_is_413(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(reason="x" * 2_000_000), headers=auth_header()
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM

    async def test_database_refuses_what_the_api_would(
        self, referrals_settings: ReferralsSettings
    ) -> None:
        with pytest.raises(asyncpg.CheckViolationError, match="ck_referral_service_type_values"):
            await fetch(
                referrals_settings,
                "INSERT INTO referral (id, person_id, region_code, service_type, to_agency, reason,"
                " due_at, referred_by_agency) VALUES ($1, $2, $3, 'haircut', 'BPJS', 'r',"
                " now() + interval '1 day', 'KEMENSOS')",
                uuid.uuid4(),
                uuid.uuid4(),
                VILLAGE,
            )


class TestAuth:
    async def test_no_token_is_401(self, referrals_service: RunningService) -> None:
        response = await referrals_service.client.post("/v1/referrals", json=referral_body())
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_expired_token_is_401(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=auth_header(ttl_seconds=-10)
        )
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    async def test_wrong_scope_is_403(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=auth_header(scopes=["referrals:read"])
        )
        assert response.status_code == 403
        assert "referrals:write" in response.json()["detail"]

    async def test_read_needs_read_scope(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.get(
            f"/v1/referrals/{uuid.uuid4()}",
            params=PURPOSE,
            headers=auth_header(scopes=["referrals:write"]),
        )
        assert response.status_code == 403

    async def test_wrong_region_is_403_on_write(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await referrals_service.client.post(
            "/v1/referrals",
            json=referral_body(region_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(regions=["1771"]),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/outside-region")

    async def test_other_region_reads_as_not_found(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        created = await referrals_service.client.post(
            "/v1/referrals",
            json=referral_body(region_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(),
        )
        referral_id = created.json()["id"]
        outsider = await referrals_service.client.get(
            f"/v1/referrals/{referral_id}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        missing = await referrals_service.client.get(
            f"/v1/referrals/{uuid.uuid4()}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        assert outsider.status_code == missing.status_code == 404
        assert without_instance(outsider.json()) == without_instance(missing.json())


class TestReadReferral:
    async def test_read_is_audited_with_purpose(
        self,
        referrals_service: RunningService,
        referrals_settings: ReferralsSettings,
        auth_header: AuthHeader,
    ) -> None:
        created = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=auth_header()
        )
        referral_id = created.json()["id"]
        response = await referrals_service.client.get(
            f"/v1/referrals/{referral_id}",
            params={"purpose": "health check follow-up"},
            headers=auth_header(agency="DINKES-1771", regions=["1771"]),
        )
        assert response.status_code == 200
        assert response.json() == created.json()
        rows = await fetch(
            referrals_settings,
            "SELECT agency, purpose, resource_type FROM audit_log WHERE resource_id = $1",
            referral_id,
        )
        assert [tuple(r) for r in rows] == [("DINKES-1771", "health check follow-up", "referral")]


class TestIdempotency:
    async def test_retry_creates_once(
        self,
        referrals_service: RunningService,
        referrals_settings: ReferralsSettings,
        auth_header: AuthHeader,
    ) -> None:
        body = referral_body()
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        first = await referrals_service.client.post("/v1/referrals", json=body, headers=headers)
        second = await referrals_service.client.post("/v1/referrals", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        rows = await fetch(
            referrals_settings,
            "SELECT count(*) AS n FROM referral WHERE person_id = $1",
            uuid.UUID(body["person_id"]),
        )
        assert rows[0]["n"] == 1

    async def test_same_key_other_body_is_422(
        self, referrals_service: RunningService, auth_header: AuthHeader
    ) -> None:
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        await referrals_service.client.post("/v1/referrals", json=referral_body(), headers=headers)
        response = await referrals_service.client.post(
            "/v1/referrals", json=referral_body(), headers=headers
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/idempotency-key-reused")
