"""Small parts of shared/ on their own: envelope, tokens, settings, public names."""

from __future__ import annotations

import importlib
import time

import jwt
import pytest

from shared.auth import Caller, TokenVerifier, generate_keypair, mint_token
from shared.envelope import EnvelopeError, from_kafka, new_event, to_kafka
from shared.errors import BodySizeLimitMiddleware, Unauthorized
from shared.settings import SharedSettings

PRIVATE, PUBLIC = generate_keypair()
VERIFIER = TokenVerifier(PUBLIC, issuer="simpul", audience="simpul")


class TestEnvelope:
    def test_binary_mode_round_trip(self) -> None:
        event = new_event(
            source="/simpul/registry",
            type="registry.person.registered.v1",
            subject="p-1",
            data={"person_id": "p-1"},
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        )
        record = to_kafka(event, topic="registry.person.v1", key="p-1")
        assert record.key == b"p-1"
        assert from_kafka(record.value, record.headers) == event

    @pytest.mark.parametrize(
        ("value", "headers", "reason"),
        [
            (b"{}", [], "missing CloudEvents headers"),
            (
                None,
                [
                    ("ce_id", b"1"),
                    ("ce_source", b"/s"),
                    ("ce_type", b"t"),
                    ("ce_specversion", b"1.0"),
                ],
                "no value",
            ),
            (
                b"[1]",
                [
                    ("ce_id", b"1"),
                    ("ce_source", b"/s"),
                    ("ce_type", b"t"),
                    ("ce_specversion", b"1.0"),
                ],
                "JSON object",
            ),
            (
                b"{}",
                [
                    ("ce_id", b"1"),
                    ("ce_source", b"/s"),
                    ("ce_type", b"t"),
                    ("ce_specversion", b"0.3"),
                ],
                "attributes",
            ),
            (
                b"{}",
                [
                    ("ce_id", b"\xff"),
                    ("ce_source", b"/s"),
                    ("ce_type", b"t"),
                    ("ce_specversion", b"1.0"),
                ],
                "UTF-8",
            ),
        ],
    )
    def test_bad_records_say_what_is_wrong(
        self, value: bytes | None, headers: list[tuple[str, bytes]], reason: str
    ) -> None:
        with pytest.raises(EnvelopeError, match=reason):
            from_kafka(value, headers)


class TestTokens:
    def test_claims_become_a_caller(self) -> None:
        token = mint_token(
            PRIVATE,
            subject="op-1",
            agency="DINSOS-1771",
            scopes=["registry:read"],
            regions=["1771"],
        )
        caller = VERIFIER.verify(token)
        assert (caller.agency, caller.scopes, caller.regions) == (
            "DINSOS-1771",
            frozenset({"registry:read"}),
            ("1771",),
        )

    def test_unsigned_tokens_are_refused(self) -> None:
        claims = {
            "sub": "x",
            "agency": "X",
            "iss": "simpul",
            "aud": "simpul",
            "iat": int(time.time()),
            "exp": int(time.time()) + 60,
        }
        with pytest.raises(Unauthorized):
            VERIFIER.verify(jwt.encode(claims, key=None, algorithm="none"))  # type: ignore[arg-type]

    def test_other_audience_is_refused(self) -> None:
        token = mint_token(PRIVATE, subject="x", agency="X", scopes=[], audience="someone-else")
        with pytest.raises(Unauthorized, match="(?i)audience"):
            VERIFIER.verify(token)

    def test_token_without_agency_is_refused(self) -> None:
        token = mint_token(PRIVATE, subject="x", agency="", scopes=[])
        with pytest.raises(Unauthorized, match="agency"):
            VERIFIER.verify(token)

    def test_regions_must_be_codes(self) -> None:
        token = mint_token(PRIVATE, subject="x", agency="X", scopes=[], regions=["Bengkulu"])
        with pytest.raises(Unauthorized, match="region codes"):
            VERIFIER.verify(token)

    @pytest.mark.parametrize(
        ("regions", "code", "visible"),
        [
            ((), "3201012001", True),
            (("1771",), "1771011001", True),
            (("1771",), "1701012001", False),
            (("17",), None, False),
        ],
    )
    def test_region_visibility_is_by_prefix(
        self, regions: tuple[str, ...], code: str | None, visible: bool
    ) -> None:
        assert Caller("x", "X", frozenset(), regions).may_see(code) is visible


class TestSettings:
    def test_production_refuses_to_start_without_a_token_key(self) -> None:
        with pytest.raises(ValueError, match="jwt_public_key"):
            SharedSettings(environment="production")


class TestBodySizeLimit:
    @pytest.mark.parametrize(
        ("path", "limit"),
        [
            ("/v1/persons", 1024),
            ("/v1/imports", 10_000),
            ("/v1/imports/abc/errors.csv", 10_000),
            ("/v1/importsx", 1024),
            ("/v1/imports/big/file", 99_999),
        ],
    )
    def test_longest_path_prefix_sets_the_limit(self, path: str, limit: int) -> None:
        async def app(scope: object, receive: object, send: object) -> None:
            raise AssertionError("not called")

        middleware = BodySizeLimitMiddleware(
            app,
            max_bytes=1024,
            limits={"/v1/imports/": 10_000, "/v1/imports/big": 99_999},
        )
        assert middleware.limit_for(path) == limit


PUBLIC_NAMES = {
    "shared.audit": [
        "AUDIT_TABLE",
        "PURPOSE_LENGTH",
        "Purpose",
        "append_only_trigger_sql",
        "audit_table",
        "read_in_region",
        "record_read",
    ],
    "shared.state": ["app_state"],
    "shared.auth": [
        "ALGORITHM",
        "DEVELOPMENT_SCOPES",
        "Caller",
        "TokenVerifier",
        "bearer_token_declared",
        "generate_keypair",
        "mint_token",
        "require_scope",
    ],
    "shared.calendar": [
        "WIB",
        "WIT",
        "WITA",
        "Holiday",
        "OverrideError",
        "WorkingCalendar",
        "YearOverrides",
        "load_overrides",
        "local_day",
        "parse_overrides",
    ],
    "shared.consumer": ["INBOX_TABLE", "ConsumerRunner", "Handler", "inbox_table", "prune_inbox"],
    "shared.envelope": [
        "CloudEvent",
        "EnvelopeError",
        "KafkaRecord",
        "event_json_schema",
        "from_kafka",
        "new_event",
        "to_kafka",
    ],
    "shared.outbox": [
        "OUTBOX_TABLE",
        "OutboxRelay",
        "add_event",
        "notify_channel",
        "notify_trigger_sql",
        "outbox_table",
    ],
    "shared.jobs": [
        "JOB_TABLE",
        "Job",
        "JobHandler",
        "JobKind",
        "JobRunner",
        "RetryLater",
        "cancel",
        "job_table",
        "nominal_backoff",
        "prune_jobs",
        "reschedule",
        "schedule",
    ],
    "shared.openapi": ["complete_openapi", "install_openapi_completion"],
    "shared.service": [
        "BackgroundWorker",
        "ConsumerSpec",
        "ReadinessDetails",
        "ServiceRuntime",
        "SessionDep",
        "create_service_app",
        "get_runtime",
        "get_session",
        "typed_settings",
    ],
    "shared.testing": [
        "BrokerHandle",
        "DatabaseServer",
        "RunningService",
        "ServedApi",
        "ServiceFixtures",
        "commit_fault",
        "eventually",
        "fetch",
        "make_caller",
        "publish_events",
        "publish_records",
        "reads_missing_their_write",
        "retries_not_replayed",
        "rolled_back_session",
        "running_service",
        "served_api",
        "service_fixtures",
        "sequence_number",
        "service_test_settings",
        "stable_number",
        "stable_uuid",
        "staged_event_types",
        "without_instance",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_public_names_are_pinned(module: str) -> None:
    """Services depend on these names; changing one is a deliberate, visible act."""
    assert sorted(importlib.import_module(module).__all__) == sorted(PUBLIC_NAMES[module])


class TestTokenCache:
    def test_a_cached_token_still_expires(self) -> None:
        verifier = TokenVerifier(PUBLIC, issuer="simpul", audience="simpul")
        token = mint_token(PRIVATE, subject="x", agency="X", scopes=[], ttl_seconds=1)
        assert verifier.verify(token).agency == "X"
        assert verifier.verify(token).agency == "X"  # from the cache
        time.sleep(1.1)
        with pytest.raises(Unauthorized, match="expired"):
            verifier.verify(token)
