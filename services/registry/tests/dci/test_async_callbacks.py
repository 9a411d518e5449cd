"""Async search: ACK now, a signed on-search later; the delivery worker's allow-list, retries,
backoff and log; header rejections of async messages travel in the callback's header."""

from __future__ import annotations

import uuid
from typing import Any

from registry.dci import spec
from registry.dci.delivery import backoff_delay, enqueue_callback
from registry.settings import RegistrySettings
from shared.db import session_scope
from shared.testing import RunningService, eventually, fetch

from .conftest import CallbackEndpoint, Headers, RegistryKey, Sender, now_iso, register_sender
from .registry_data import BALIKPAPAN, READ, SAMARINDA, family, fresh_village

SEARCH = "/registry/search"


def identifier_search() -> dict[str, Any]:
    return {
        "transaction_id": uuid.uuid4().hex[:20],
        "search_request": [
            {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now_iso(),
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "NIK", "value": "3171010101900001"},
                },
            }
        ],
    }


def assert_ack(response: Any) -> str:
    assert response.status_code == 202, response.text
    body = response.json()
    spec.validate_response(SEARCH, body, status=202)
    assert body["message"]["ack_status"] == "ACK"
    correlation_id: str = body["message"]["correlation_id"]
    return correlation_id


async def deliveries(settings: RegistrySettings, sender_id: str) -> list[Any]:
    return await fetch(
        settings,
        "SELECT id, status, attempts, last_error, url FROM dci_deliveries WHERE sender_id = $1",
        sender_id,
    )


async def attempts(settings: RegistrySettings, sender_id: str) -> list[Any]:
    return await fetch(
        settings,
        "SELECT a.attempt, a.outcome, a.http_status, a.error, a.attempted_at, a.message_id "
        "FROM dci_delivery_attempts a JOIN dci_deliveries d ON d.id = a.delivery_id "
        "WHERE d.sender_id = $1 ORDER BY a.attempt",
        sender_id,
    )


class TestAsyncSearch:
    async def test_acks_then_calls_back_a_signed_on_search(
        self, dci_sender: Sender, callback: CallbackEndpoint, registry_key: RegistryKey
    ) -> None:
        message = identifier_search()
        correlation_id = assert_ack(await dci_sender.post(SEARCH, message, action="search"))

        (received,) = await callback.wait_for(1, action="on-search")
        envelope = received.body
        registry_key.verify(envelope)
        assert spec.validate_request("/registry/on-search", envelope) == []
        header, answer = envelope["header"], envelope["message"]
        assert header["sender_id"] == "simpul-registry"
        assert header["receiver_id"] == dci_sender.sender_id
        assert header["status"] == "succ"
        assert answer["transaction_id"] == message["transaction_id"]
        assert answer["correlation_id"] == correlation_id
        (item,) = answer["search_response"]
        assert item["reference_id"] == message["search_request"][0]["reference_id"]
        assert item["status"] == "succ"

    async def test_the_worker_reads_with_the_rights_of_the_token_that_asked(
        self,
        dci_sender: Sender,
        callback: CallbackEndpoint,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        inside = await family(registry_service, auth_header, village=fresh_village()[0])
        outside = await family(registry_service, auth_header, village=fresh_village(SAMARINDA)[0])
        dci_sender.scopes = (READ,)
        dci_sender.regions = (BALIKPAPAN,)
        message = identifier_search()
        message["search_request"] = [
            {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now_iso(),
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "KK", "value": household["kk"]},
                    "authorize": {"purpose": {"text": "BPNT distribution check"}},
                },
            }
            for household in (inside, outside)
        ]
        assert_ack(await dci_sender.post(SEARCH, message, action="search"))

        (received,) = await callback.wait_for(1, action="on-search")
        found, hidden = received.body["message"]["search_response"]
        (group,) = found["data"]["reg_records"]
        assert "poverty_score" not in group  # registry:read alone: no socio-economic fields
        assert hidden["status"] == "succ"
        assert hidden["data"]["reg_records"] == []  # outside the token's region
        rows = await fetch(
            registry_settings,
            "SELECT agency, purpose FROM audit_log WHERE resource_id = ANY($1::text[])",
            [inside["id"], outside["id"]],
        )
        assert rows
        assert {(r["agency"], r["purpose"]) for r in rows} == {
            (dci_sender.agency, rows[0]["purpose"])
        }
        assert "BPNT distribution check" in rows[0]["purpose"]

    async def test_a_header_rejection_travels_in_the_callback(
        self, dci_sender: Sender, callback: CallbackEndpoint, registry_key: RegistryKey
    ) -> None:
        envelope = dci_sender.envelope("search", identifier_search(), total_count=3)
        assert_ack(await dci_sender.send(SEARCH, envelope))
        (received,) = await callback.wait_for(1, action="on-search")
        registry_key.verify(received.body)
        assert spec.validate_request("/registry/on-search", received.body) == []
        assert received.body["header"]["status"] == "rjct"
        assert received.body["header"]["status_reason_code"] == "rjct.total_count.invalid"

    async def test_a_callback_outside_the_allow_list_is_refused_at_once(
        self,
        dci_sender: Sender,
        callback_server: Any,
        registry_settings: RegistrySettings,
    ) -> None:
        elsewhere = f"{callback_server.base_url}/not-allowed/{uuid.uuid4().hex}"
        envelope = dci_sender.envelope("search", identifier_search(), sender_uri=elsewhere)
        response = await dci_sender.send(SEARCH, envelope)
        assert response.status_code == 400
        assert response.json()["message"]["error"]["code"] == "err.sender_uri.invalid"
        assert await deliveries(registry_settings, dci_sender.sender_id) == []
        assert "/not-allowed/" + elsewhere.rsplit("/", 1)[-1] not in callback_server.received

    async def test_a_prefix_trick_is_not_allowed(self, dci_sender: Sender) -> None:
        # The allow-list holds .../on-callback; .../on-callback-evil is not under it.
        envelope = dci_sender.envelope(
            "search", identifier_search(), sender_uri=dci_sender.callback.url + "-evil"
        )
        response = await dci_sender.send(SEARCH, envelope)
        assert response.json()["message"]["error"]["code"] == "err.sender_uri.invalid"


class TestDelivery:
    async def test_a_queued_callback_outside_the_allow_list_is_never_sent(
        self,
        registry_service: RunningService,
        auth_header: Headers,
        callback: CallbackEndpoint,
        registry_settings: RegistrySettings,
    ) -> None:
        """A subscription keeps its callback URL; once the sender's allow-list no longer holds
        it, the worker refuses every callback to it without contacting it."""
        sender = await register_sender(registry_service, auth_header, callback)
        response = await registry_service.client.patch(
            f"/v1/dci/senders/{sender.sender_id}",
            json={"callback_allow_list": ["https://elsewhere.example/"]},
            headers=auth_header(scopes=["registry:admin"]),
        )
        assert response.status_code == 200, response.text
        async with session_scope(registry_service.runtime.sessionmaker) as session:
            await enqueue_callback(
                session,
                sender_id=sender.sender_id,
                url=callback.url,
                action="notify",
                message={"transaction_id": "t-1", "notify_event": []},
                transaction_id="t-1",
            )

        async def finished() -> list[Any] | None:
            rows = await deliveries(registry_settings, sender.sender_id)
            return rows if rows and rows[0]["status"] != "pending" else None

        (row,) = await eventually(finished, what="the refusal")
        assert row["status"] == "failed"
        assert "allow-list" in row["last_error"]
        (attempt,) = await attempts(registry_settings, sender.sender_id)
        assert (attempt["outcome"], attempt["http_status"]) == ("refused", None)
        assert callback.requests == []

    async def test_retries_with_backoff_and_logs_every_attempt(
        self,
        dci_sender: Sender,
        callback: CallbackEndpoint,
        registry_settings: RegistrySettings,
        registry_key: RegistryKey,
    ) -> None:
        callback.fail_next(2, status=503)
        assert_ack(await dci_sender.post(SEARCH, identifier_search(), action="search"))

        received = await callback.wait_for(3, action="on-search")
        for request in received:
            registry_key.verify(request.body)
        # The same message id on every try, so the receiver can tell a retry from a new one.
        assert len({r.body["header"]["message_id"] for r in received}) == 1

        async def delivered() -> list[Any] | None:
            rows = await deliveries(registry_settings, dci_sender.sender_id)
            return rows if rows and rows[0]["status"] == "delivered" else None

        (row,) = await eventually(delivered, what="delivered")
        assert row["attempts"] == 3
        log = await attempts(registry_settings, dci_sender.sender_id)
        assert [(a["attempt"], a["outcome"], a["http_status"]) for a in log] == [
            (1, "retry", 503),
            (2, "retry", 503),
            (3, "delivered", 200),
        ]
        assert {a["message_id"] for a in log} == {str(row["id"])}
        # Exponential backoff: each wait is at least the nominal delay, which doubles.
        base = registry_settings.dci_callback_backoff_seconds
        cap = registry_settings.dci_callback_backoff_max_seconds
        gaps = [
            (later["attempted_at"] - earlier["attempted_at"]).total_seconds()
            for earlier, later in zip(log, log[1:], strict=False)
        ]
        nominal = [backoff_delay(n, base=base, cap=cap) for n in (1, 2)]
        assert nominal == [base, 2 * base]
        assert all(gap >= delay for gap, delay in zip(gaps, nominal, strict=True)), gaps

    async def test_gives_up_after_the_last_attempt(
        self,
        dci_sender: Sender,
        callback: CallbackEndpoint,
        registry_settings: RegistrySettings,
    ) -> None:
        limit = registry_settings.dci_callback_max_attempts
        callback.fail_next(limit + 5, status=500)
        assert_ack(await dci_sender.post(SEARCH, identifier_search(), action="search"))

        async def failed() -> list[Any] | None:
            rows = await deliveries(registry_settings, dci_sender.sender_id)
            return rows if rows and rows[0]["status"] == "failed" else None

        (row,) = await eventually(failed, what="given up")
        assert row["attempts"] == limit
        log = await attempts(registry_settings, dci_sender.sender_id)
        assert [a["outcome"] for a in log] == ["retry"] * (limit - 1) + ["failed"]
        assert len(callback.requests) == limit

    def test_backoff_doubles_up_to_the_cap(self) -> None:
        assert [backoff_delay(n, base=2, cap=30) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]
