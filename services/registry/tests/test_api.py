"""The registry over HTTP: auth, validation, idempotency, audit, events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import date

import asyncpg
import pytest

from registry.settings import RegistrySettings
from shared.db import sync_url
from shared.testing import RunningService, fetch

from .factories import OTHER_REGENCY_VILLAGE, make_nik, person_body

PROBLEM = "application/problem+json"


class TestCreatePerson:
    async def test_registers_and_stages_an_event(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers=auth_header()
        )
        assert response.status_code == 201, response.text
        person_id = response.json()["id"]
        rows = await fetch(
            registry_settings,
            "SELECT topic, key, event_type FROM outbox_event WHERE key = $1",
            person_id,
        )
        assert [(r["topic"], r["event_type"]) for r in rows] == [
            ("registry.person.v1", "registry.person.registered.v1")
        ]

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"nik": "12345"}, "body.nik"),
            ({"nik": "17710141099000O1"}, "body.nik"),
            ({"birth_date": "1990-02-30"}, "body.birth_date"),
            ({"sex": "X"}, "body.sex"),
            ({"full_name": ""}, "body.full_name"),
            ({"village_code": 1771011001}, "body.village_code"),
            ({"favourite_colour": "red"}, "body.favourite_colour"),
        ],
    )
    async def test_bad_fields_are_named(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        change: dict[str, object],
        field: str,
    ) -> None:
        body = {**person_body(), **change}
        response = await registry_service.client.post(
            "/v1/persons", json=body, headers=auth_header()
        )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM
        assert field in [error["field"] for error in response.json()["errors"]]

    async def test_malformed_json_is_400(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons",
            content=b'{"nik": "17',
            headers={**auth_header(), "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert response.json()["type"].endswith("/malformed-body")

    async def test_oversized_body_is_413(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        body = person_body(full_name="x" * 2_000_000)
        response = await registry_service.client.post(
            "/v1/persons", json=body, headers=auth_header()
        )
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM

    @pytest.mark.parametrize(
        ("nik_change", "reason"),
        [
            (lambda nik: nik[:6] + "30" + "02" + nik[10:], "is not a date"),
            (lambda nik: nik[:12] + "0000", "serial 0000"),
            (lambda nik: "999999" + nik[6:], "district code 999999 does not exist"),
        ],
    )
    async def test_nik_rules_explain_themselves(
        self,
        registry_service: RunningService,
        auth_header: Callable[..., dict[str, str]],
        nik_change: Callable[[str], str],
        reason: str,
    ) -> None:
        body = person_body(birth_date=date(1990, 2, 28), sex="M")
        body["nik"] = nik_change(body["nik"])
        response = await registry_service.client.post(
            "/v1/persons", json=body, headers=auth_header()
        )
        assert response.status_code == 422
        assert reason in response.json()["detail"]

    async def test_woman_needs_day_plus_40(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        body = person_body(birth_date=date(1990, 9, 5), sex="F")
        body["nik"] = make_nik(birth_date=date(1990, 9, 5), sex="M")
        response = await registry_service.client.post(
            "/v1/persons", json=body, headers=auth_header()
        )
        assert response.status_code == 422
        assert "over 40" in response.json()["detail"]

    async def test_unknown_village_is_refused(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(village_code="1771019999"), headers=auth_header()
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/unknown-region")

    async def test_duplicate_nik_is_409(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        body = person_body()
        first = await registry_service.client.post("/v1/persons", json=body, headers=auth_header())
        second = await registry_service.client.post("/v1/persons", json=body, headers=auth_header())
        assert (first.status_code, second.status_code) == (201, 409)


class TestAuth:
    async def test_no_token_is_401(self, registry_service: RunningService) -> None:
        response = await registry_service.client.post("/v1/persons", json=person_body())
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"].startswith("Bearer")

    async def test_bad_signature_is_401(
        self, registry_service: RunningService, mint: Callable[..., str]
    ) -> None:
        token = mint()
        header, payload, signature = token.split(".")
        forged = f"{header}.{payload}.{signature[:-4]}AAAA"
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers={"Authorization": f"Bearer {forged}"}
        )
        assert response.status_code == 401

    async def test_token_of_another_issuer_key_is_401(
        self, registry_service: RunningService
    ) -> None:
        from shared.auth import generate_keypair, mint_token

        stranger = mint_token(
            generate_keypair()[0], subject="x", agency="X", scopes=["registry:write"]
        )
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers={"Authorization": f"Bearer {stranger}"}
        )
        assert response.status_code == 401
        assert "signature" in response.json()["detail"]

    async def test_expired_token_is_401(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers=auth_header(ttl_seconds=-10)
        )
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]

    async def test_wrong_scope_is_403(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers=auth_header(scopes=["registry:read"])
        )
        assert response.status_code == 403
        assert "registry:write" in response.json()["detail"]

    async def test_wrong_region_is_403_on_write(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons",
            json=person_body(village_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(regions=["1771"]),
        )
        assert response.status_code == 403

    async def test_other_region_reads_as_not_found(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        created = await registry_service.client.post(
            "/v1/persons",
            json=person_body(village_code=OTHER_REGENCY_VILLAGE),
            headers=auth_header(),
        )
        person_id = created.json()["id"]
        outsider = await registry_service.client.get(
            f"/v1/persons/{person_id}",
            params={"purpose": "test"},
            headers=auth_header(regions=["1771"]),
        )
        missing = await registry_service.client.get(
            f"/v1/persons/{uuid.uuid4()}",
            params={"purpose": "test"},
            headers=auth_header(regions=["1771"]),
        )
        assert outsider.status_code == missing.status_code == 404

        def without_instance(body: dict[str, object]) -> dict[str, object]:
            return {k: v for k, v in body.items() if k != "instance"}

        assert without_instance(outsider.json()) == without_instance(missing.json())


class TestReadPerson:
    async def test_read_is_audited_with_purpose(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        created = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers=auth_header()
        )
        person_id = created.json()["id"]
        response = await registry_service.client.get(
            f"/v1/persons/{person_id}",
            params={"purpose": "PBI-JK eligibility"},
            headers=auth_header(agency="BPJS"),
        )
        assert response.status_code == 200
        rows = await fetch(
            registry_settings,
            "SELECT agency, purpose, resource_type FROM audit_log WHERE resource_id = $1",
            person_id,
        )
        assert [tuple(r) for r in rows] == [("BPJS", "PBI-JK eligibility", "person")]

    async def test_purpose_is_required(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.get(
            f"/v1/persons/{uuid.uuid4()}", headers=auth_header()
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "query.purpose"

    async def test_audit_log_is_append_only(self, registry_settings: RegistrySettings) -> None:
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await fetch(registry_settings, "DELETE FROM audit_log")


class TestIdempotency:
    async def test_retry_creates_once(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        body, key = person_body(), str(uuid.uuid4())
        headers = {**auth_header(), "Idempotency-Key": key}
        first = await registry_service.client.post("/v1/persons", json=body, headers=headers)
        second = await registry_service.client.post("/v1/persons", json=body, headers=headers)
        assert (first.status_code, second.status_code) == (201, 201)
        assert first.json() == second.json()
        assert second.headers["idempotent-replayed"] == "true"
        rows = await fetch(
            registry_settings, "SELECT count(*) AS n FROM person WHERE nik = $1", body["nik"]
        )
        assert rows[0]["n"] == 1

    async def test_same_key_other_body_is_422(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        headers = {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        await registry_service.client.post("/v1/persons", json=person_body(), headers=headers)
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers=headers
        )
        assert response.status_code == 422
        assert response.json()["type"].endswith("/idempotency-key-reused")

    async def test_keys_are_scoped_per_agency(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        key = str(uuid.uuid4())
        first = await registry_service.client.post(
            "/v1/persons",
            json=person_body(),
            headers={**auth_header(agency="DINSOS-1771"), "Idempotency-Key": key},
        )
        other = await registry_service.client.post(
            "/v1/persons",
            json=person_body(),
            headers={**auth_header(agency="BPJS"), "Idempotency-Key": key},
        )
        assert (first.status_code, other.status_code) == (201, 201)
        assert first.json()["id"] != other.json()["id"]

    async def test_retry_while_in_flight_is_409(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        key = str(uuid.uuid4())
        # Hold the key's lock the way a first, still-running request would.
        conn = await asyncpg.connect(sync_url(registry_settings.database_url))
        try:
            async with conn.transaction():
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"idempotency_key:KEMENSOS:{key}",
                )
                response = await registry_service.client.post(
                    "/v1/persons",
                    json=person_body(),
                    headers={**auth_header(), "Idempotency-Key": key},
                )
        finally:
            await conn.close()
        assert response.status_code == 409
        assert response.headers["retry-after"] == "1"

    async def test_parallel_identical_posts_create_once(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Callable[..., dict[str, str]],
    ) -> None:
        # Every answer must come from the key: the one creation, its replay, or "in flight".
        # Without the key the unique NIK would still stop the duplicates, but with a
        # nik-already-registered 409, which is what the test rules out.
        body, headers = person_body(), {**auth_header(), "Idempotency-Key": str(uuid.uuid4())}
        responses = await asyncio.gather(
            *(
                registry_service.client.post("/v1/persons", json=body, headers=headers)
                for _ in range(6)
            )
        )
        responses.append(
            await registry_service.client.post("/v1/persons", json=body, headers=headers)
        )
        created = [r for r in responses if r.status_code == 201]
        others = [r for r in responses if r.status_code != 201]
        assert [(r.status_code, r.json()["type"].rsplit("/", 1)[-1]) for r in others] == [
            (409, "idempotency-key-in-flight")
        ] * len(others), [r.text for r in others]
        assert [r.headers.get("idempotent-replayed") for r in created].count(None) == 1
        assert responses[-1].status_code == 201
        assert responses[-1].headers["idempotent-replayed"] == "true"
        assert all(r.json() == created[0].json() for r in created)
        person_id = created[0].json()["id"]
        rows = await fetch(
            registry_settings, "SELECT count(*) AS n FROM person WHERE nik = $1", body["nik"]
        )
        assert rows[0]["n"] == 1
        rows = await fetch(
            registry_settings, "SELECT count(*) AS n FROM outbox_event WHERE key = $1", person_id
        )
        assert rows[0]["n"] == 1

    async def test_malformed_key_is_400(
        self, registry_service: RunningService, auth_header: Callable[..., dict[str, str]]
    ) -> None:
        response = await registry_service.client.post(
            "/v1/persons", json=person_body(), headers={**auth_header(), "Idempotency-Key": "short"}
        )
        assert response.status_code == 400
