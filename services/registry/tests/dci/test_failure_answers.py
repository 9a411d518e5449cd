"""What goes wrong around the messages, answered in the spec's shape: unknown endpoints, a
database out of reach, a search past its time limit, a sender over its rate limit, and a
message with too many rejected items."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from registry.app import create_app
from registry.dci import spec
from registry.dci.api import BASE_PATH
from registry.settings import RegistrySettings
from shared.db import sync_url
from shared.testing import RunningService, fetch, running_service

from .conftest import CallbackEndpoint, Headers, Sender, register_sender
from .test_envelope import (
    assert_err,
    search_message,
    spec_identifier_query,
    sync_search,
    sync_search_envelope,
)

SYNC_SEARCH = "/registry/sync/search"
SEARCH = "/registry/search"


def nik_search() -> dict[str, Any]:
    return search_message({"query_type": "idtype-value", "query": spec_identifier_query()})


@asynccontextmanager
async def person_table_locked(settings: RegistrySettings) -> AsyncIterator[None]:
    """Hold ACCESS EXCLUSIVE on ``person`` from another connection: every search waits."""
    connection = await asyncpg.connect(sync_url(settings.database_url))
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute("LOCK TABLE person IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        await transaction.rollback()
        await connection.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestUnknownEndpoints:
    @pytest.mark.parametrize("path", ["/registry/on-search", "/registry/sync/serch", "/nothing"])
    async def test_an_unknown_path_is_err_request_not_found(
        self, dci_sender: Sender, path: str
    ) -> None:
        response = await dci_sender.send(path, dci_sender.envelope("search", nik_search()))
        assert_err(response, "err.request.not_found", 404)
        reason = response.json()["message"]["error"]["message"]
        assert BASE_PATH + path in reason
        assert "POST /registry/sync/search" in reason
        assert "POST /registry/txn/status" in reason

    async def test_a_served_path_with_another_method_is_err_request_bad(
        self, registry_service: RunningService
    ) -> None:
        response = await registry_service.client.get(BASE_PATH + SYNC_SEARCH)
        assert_err(response, "err.request.bad", 405)
        assert response.headers["allow"] == "POST"

    async def test_other_paths_keep_problem_json(self, registry_service: RunningService) -> None:
        response = await registry_service.client.post("/v1/no-such-thing", json={})
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


class TestDatabaseOutOfReach:
    async def test_sync_and_async_routes_answer_err_service_unavailable(
        self, registry_settings: RegistrySettings, dci_sender: Sender
    ) -> None:
        unreachable = registry_settings.database_url.rsplit("@", 1)[0] + (
            f"@127.0.0.1:{closed_port()}/simpul_registry"
        )
        settings = registry_settings.model_copy(update={"database_url": unreachable})
        app = create_app(settings, run_relay=False, run_consumers=False)
        async with running_service(app) as down:
            for path in (SYNC_SEARCH, SEARCH):
                response = await down.client.post(
                    BASE_PATH + path,
                    json=dci_sender.envelope("search", nik_search()),
                    headers=dci_sender.headers(),
                )
                assert_err(response, "err.service.unavailable", 503)
                assert int(response.headers["retry-after"]) > 0


class TestSearchTimeout:
    async def test_a_sync_search_past_the_limit_is_err_request_timeout_and_leaves_nothing(
        self, registry_settings: RegistrySettings, dci_sender: Sender
    ) -> None:
        settings = registry_settings.model_copy(update={"dci_search_timeout_ms": 200})
        app = create_app(settings, run_relay=False, run_consumers=False)
        envelope = dci_sender.envelope("search", nik_search())
        async with running_service(app) as impatient:
            async with person_table_locked(settings):
                response = await impatient.client.post(
                    BASE_PATH + SYNC_SEARCH, json=envelope, headers=dci_sender.headers()
                )
            assert_err(response, "err.request.timeout", 504)
            assert "200 ms" in response.json()["message"]["error"]["message"]
            for table in ("dci_messages", "dci_transactions"):
                rows = await fetch(
                    settings,
                    f"SELECT 1 FROM {table} WHERE sender_id = $1 AND message_id = $2",
                    dci_sender.sender_id,
                    envelope["header"]["message_id"],
                )
                assert rows == [], table
            # Nothing was kept, not even the message id: the same message may be sent again.
            again = await impatient.client.post(
                BASE_PATH + SYNC_SEARCH, json=envelope, headers=dci_sender.headers()
            )
        assert again.status_code == 200, again.text
        spec.validate_response(SYNC_SEARCH, again.json())
        assert again.json()["header"]["status"] == "succ"

    async def test_an_async_search_past_the_limit_is_called_back_rjct(
        self, registry_settings: RegistrySettings, dci_sender: Sender
    ) -> None:
        message = nik_search()
        async with person_table_locked(registry_settings):
            response = await dci_sender.post(SEARCH, message, action="search")
            assert response.status_code == 202, response.text
            (callback,) = await dci_sender.callback.wait_for(1, action="on-search")
        body = callback.body
        spec.validate_response("/registry/on-search", body)
        assert body["header"]["status"] == "rjct"
        assert body["header"]["status_reason_message"].startswith("err.request.timeout")
        (item,) = body["message"]["search_response"]
        assert item["reference_id"] == message["search_request"][0]["reference_id"]
        assert item["status"] == "rjct"
        assert item["status_reason_message"].startswith("err.request.timeout")
        rows = await fetch(
            registry_settings,
            "SELECT status FROM dci_transactions WHERE sender_id = $1 AND transaction_id = $2",
            dci_sender.sender_id,
            message["transaction_id"],
        )
        assert [row["status"] for row in rows] == ["rjct"]


class TestRateLimit:
    async def test_over_the_limit_is_429_with_retry_after(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
        callback: CallbackEndpoint,
    ) -> None:
        sender = await register_sender(registry_service, auth_header, callback)
        admin = auth_header(scopes=["registry:admin"])
        path = f"/v1/dci/senders/{sender.sender_id}"
        limited = await registry_service.client.patch(
            path, json={"max_messages_per_minute": 2}, headers=admin
        )
        assert limited.status_code == 200, limited.text
        assert limited.json()["max_messages_per_minute"] == 2
        for _ in range(2):
            await sync_search(sender, nik_search())
        refused_envelope = sender.envelope("search", nik_search())
        refused = await sender.send(SYNC_SEARCH, refused_envelope)
        assert_err(refused, "err.request.too_many_requests", 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # A refused message is not recorded: it neither counts nor becomes a duplicate.
        rows = await fetch(
            registry_settings,
            "SELECT 1 FROM dci_messages WHERE sender_id = $1 AND message_id = $2",
            sender.sender_id,
            refused_envelope["header"]["message_id"],
        )
        assert rows == []
        lifted = await registry_service.client.patch(
            path, json={"max_messages_per_minute": None}, headers=admin
        )
        assert lifted.json()["max_messages_per_minute"] is None
        body = await sync_search_envelope(sender, refused_envelope)
        assert body["header"]["status"] == "succ"

    async def test_the_limit_must_be_positive(
        self, registry_service: RunningService, dci_sender: Sender, auth_header: Headers
    ) -> None:
        response = await registry_service.client.patch(
            f"/v1/dci/senders/{dci_sender.sender_id}",
            json={"max_messages_per_minute": 0},
            headers=auth_header(scopes=["registry:admin"]),
        )
        assert response.status_code == 422


class TestTooManyRejectedItems:
    async def test_the_header_says_rjct_errors_too_many(
        self, dci_sender: Sender, registry_settings: RegistrySettings
    ) -> None:
        limit = registry_settings.dci_max_rejected_items
        good = {"query_type": "idtype-value", "query": spec_identifier_query()}
        bad = {"query_type": "idtype-value", "query": {"type": "MOBILE", "value": "0812"}}
        body = await sync_search(dci_sender, search_message(good, *[bad] * (limit + 1)))
        header, items = body["header"], body["message"]["search_response"]
        assert header["status"] == "rjct"
        assert header["status_reason_code"] == "rjct.errors.too_many"
        assert f"{limit + 1} of the {limit + 2}" in header["status_reason_message"]
        assert header["completed_count"] == header["total_count"] == limit + 2
        # Each item is still answered, with its own reason.
        assert items[0]["status"] == "succ"
        assert {item["status_reason_code"] for item in items[1:]} == {
            "rjct.search_criteria.invalid"
        }
        rows = await fetch(
            registry_settings,
            "SELECT status FROM dci_transactions WHERE sender_id = $1 AND transaction_id = $2",
            dci_sender.sender_id,
            body["message"]["transaction_id"],
        )
        assert [row["status"] for row in rows] == ["rjct"]

    async def test_up_to_the_limit_the_header_is_succ(
        self, dci_sender: Sender, registry_settings: RegistrySettings
    ) -> None:
        limit = registry_settings.dci_max_rejected_items
        bad = {"query_type": "idtype-value", "query": {"type": "MOBILE", "value": "0812"}}
        body = await sync_search(dci_sender, search_message(*[bad] * limit))
        assert body["header"]["status"] == "succ"
        assert "status_reason_code" not in body["header"]
