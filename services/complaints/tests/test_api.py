"""Complaints over HTTP: auth, validation, the LAPOR! deadline, idempotency, audit, events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg
import pytest

from complaints.settings import ComplaintsSettings
from shared.testing import RunningService, eventually, fetch, without_instance

from .factories import OTHER_REGENCY_VILLAGE, VILLAGE, complaint_body

PROBLEM = "application/problem+json"
PURPOSE = {"purpose": "case follow-up"}
AuthHeader = Callable[..., dict[str, str]]


class TestFileComplaint:
    async def test_files_and_stages_an_event(
        self,
        complaints_service: RunningService,
        complaints_settings: ComplaintsSettings,
        auth_header: AuthHeader,
    ) -> None:
        person_id = str(uuid.uuid4())
        response = await complaints_service.client.post(
            "/v1/complaints",
            json=complaint_body(person_id=person_id),
            headers=auth_header(agency="DINSOS-1771"),
        )
        assert response.status_code == 201, response.text
        complaint = response.json()
        assert (complaint["status"], complaint["filed_by_agency"], complaint["person_id"]) == (
            "received",
            "DINSOS-1771",
            person_id,
        )
        rows = await fetch(
            complaints_settings,
            "SELECT topic, event_type, envelope->'data'->>'category' AS category"
            " FROM outbox_event WHERE key = $1",
            complaint["id"],
        )
        assert [tuple(r) for r in rows] == [
            ("complaints.complaint.v1", "complaints.complaint.filed.v1", "data_correction")
        ]

    async def test_first_response_is_due_in_three_days(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(channel="lapor"), headers=auth_header()
        )
        complaint = response.json()
        due_at = datetime.fromisoformat(complaint["due_at"])
        assert due_at - datetime.fromisoformat(complaint["created_at"]) == timedelta(days=3)

    @pytest.mark.parametrize("region_code", ["17", "1771", "177101", "1771011001"])
    async def test_any_level_of_region_may_be_concerned(
        self, complaints_service: RunningService, auth_header: AuthHeader, region_code: str
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(region_code=region_code), headers=auth_header()
        )
        assert response.status_code == 201, response.text
        assert response.json()["person_id"] is None

    async def test_relay_publishes_the_event(
        self,
        complaints_service: RunningService,
        complaints_settings: ComplaintsSettings,
        auth_header: AuthHeader,
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(), headers=auth_header()
        )
        complaint_id = response.json()["id"]

        async def sent() -> bool:
            rows = await fetch(
                complaints_settings,
                "SELECT 1 FROM outbox_event WHERE key = $1 AND sent_at IS NOT NULL",
                complaint_id,
            )
            return bool(rows)

        await eventually(sent, what="complaint event published")

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"channel": "carrier_pigeon"}, "body.channel"),
            ({"category": "weather"}, "body.category"),
            ({"region_code": 1771011001}, "body.region_code"),
            ({"region_code": "177"}, "body.region_code"),
            ({"region_code": "17710110"}, "body.region_code"),
            ({"person_id": "not-a-uuid"}, "body.person_id"),
            ({"summary": ""}, "body.summary"),
            ({"summary": "  "}, "body.summary"),
            ({"summary": "x" * 2001}, "body.summary"),
            ({"summary": ["a", "list"]}, "body.summary"),
            ({"status": "resolved"}, "body.status"),
        ],
    )
    async def test_bad_fields_are_named(
        self,
        complaints_service: RunningService,
        auth_header: AuthHeader,
        change: dict[str, object],
        field: str,
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json={**complaint_body(), **change}, headers=auth_header()
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert field in [error["field"] for error in response.json()["errors"]]

    @pytest.mark.parametrize("missing", ["channel", "category", "region_code", "summary"])
    async def test_missing_fields_are_named(
        self, complaints_service: RunningService, auth_header: AuthHeader, missing: str
    ) -> None:
        body = complaint_body()
        del body[missing]
        response = await complaints_service.client.post(
            "/v1/complaints", json=body, headers=auth_header()
        )
        assert response.status_code == 422
        assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [
            (f"body.{missing}", "missing")
        ]

    async def test_malformed_json_is_400(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints",
            content=b'{"channel": "sms", ',
            headers={**auth_header(), "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["type"].endswith("/malformed-body")

    async def test_oversized_body_is_413(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(summary="x" * 2_000_000), headers=auth_header()
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM

    async def test_database_refuses_what_the_api_would(
        self, complaints_settings: ComplaintsSettings
    ) -> None:
        with pytest.raises(asyncpg.CheckViolationError, match="ck_complaint_channel_values"):
            await fetch(
                complaints_settings,
                "INSERT INTO complaint (id, channel, category, region_code, summary, due_at,"
                " filed_by_agency) VALUES ($1, 'fax', 'other', $2, 's', now() + interval '3 days',"
                " 'KEMENSOS')",
                uuid.uuid4(),
                VILLAGE,
            )


class TestAuth:
    async def test_no_token_is_401(self, complaints_service: RunningService) -> None:
        response = await complaints_service.client.post("/v1/complaints", json=complaint_body())
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_expired_token_is_401(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(), headers=auth_header(ttl_seconds=-10)
        )
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    async def test_wrong_scope_is_403(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(), headers=auth_header(scopes=["complaints:read"])
        )
        assert response.status_code == 403
        assert "complaints:write" in response.json()["detail"]

    async def test_read_needs_read_scope(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        response = await complaints_service.client.get(
            f"/v1/complaints/{uuid.uuid4()}",
            params=PURPOSE,
            headers=auth_header(scopes=["complaints:write"]),
        )
        assert response.status_code == 403

    @pytest.mark.parametrize("region_code", [OTHER_REGENCY_VILLAGE, "17"])
    async def test_region_outside_the_token_is_403_on_write(
        self, complaints_service: RunningService, auth_header: AuthHeader, region_code: str
    ) -> None:
        response = await complaints_service.client.post(
            "/v1/complaints",
            json=complaint_body(region_code=region_code),
            headers=auth_header(regions=["1771"]),
        )
        assert response.status_code == 403
        assert response.json()["type"].endswith("/outside-region")

    async def test_other_region_reads_as_not_found(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        created = await complaints_service.client.post(
            "/v1/complaints",
            json=complaint_body(region_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(),
        )
        complaint_id = created.json()["id"]
        outsider = await complaints_service.client.get(
            f"/v1/complaints/{complaint_id}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        missing = await complaints_service.client.get(
            f"/v1/complaints/{uuid.uuid4()}", params=PURPOSE, headers=auth_header(regions=["1771"])
        )
        assert outsider.status_code == missing.status_code == 404
        assert without_instance(outsider.json()) == without_instance(missing.json())


class TestReadComplaint:
    async def test_read_is_audited_with_purpose(
        self,
        complaints_service: RunningService,
        complaints_settings: ComplaintsSettings,
        auth_header: AuthHeader,
    ) -> None:
        created = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(), headers=auth_header()
        )
        complaint_id = created.json()["id"]
        response = await complaints_service.client.get(
            f"/v1/complaints/{complaint_id}",
            params={"purpose": "first response"},
            headers=auth_header(agency="DINSOS-1771", regions=["1771"]),
        )
        assert response.status_code == 200
        assert response.json() == created.json()
        rows = await fetch(
            complaints_settings,
            "SELECT agency, purpose, resource_type FROM audit_log WHERE resource_id = $1",
            complaint_id,
        )
        assert [tuple(r) for r in rows] == [("DINSOS-1771", "first response", "complaint")]


class TestIdempotency:
    async def test_retry_creates_once(
        self,
        complaints_service: RunningService,
        complaints_settings: ComplaintsSettings,
        auth_header: AuthHeader,
    ) -> None:
        body = complaint_body(summary=f"Retried over a bad line {uuid.uuid4()}")
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        first = await complaints_service.client.post("/v1/complaints", json=body, headers=headers)
        second = await complaints_service.client.post("/v1/complaints", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        rows = await fetch(
            complaints_settings,
            "SELECT count(*) AS n FROM complaint WHERE summary = $1",
            body["summary"],
        )
        assert rows[0]["n"] == 1

    async def test_same_key_other_body_is_422(
        self, complaints_service: RunningService, auth_header: AuthHeader
    ) -> None:
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(), headers=headers
        )
        response = await complaints_service.client.post(
            "/v1/complaints", json=complaint_body(category="payment"), headers=headers
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/idempotency-key-reused")
