"""txn/status (sync and async): the state of a sender's searches and subscriptions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from registry.dci import spec
from shared.testing import RunningService

from .conftest import CallbackEndpoint, Headers, RegistryKey, Sender, now_iso, register_sender
from .test_subscriptions import criteria, subscribe, unsubscribe

SYNC_STATUS = "/registry/sync/txn/status"
STATUS = "/registry/txn/status"


def status_message(txn_type: str, attribute_type: str, value: Any) -> dict[str, Any]:
    return {
        "transaction_id": uuid.uuid4().hex[:20],
        "txnstatus_request": {
            "reference_id": uuid.uuid4().hex,
            "txn_type": txn_type,
            "attribute_type": attribute_type,
            "attribute_value": value,
        },
    }


async def sync_status(sender: Sender, message: dict[str, Any]) -> dict[str, Any]:
    envelope = sender.envelope("txn-status", message)
    response = await sender.send(SYNC_STATUS, envelope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    spec.validate_response(SYNC_STATUS, body)
    assert body["header"]["action"] == "txn-on-status"
    status: dict[str, Any] = body["message"]["txnstatus_response"]
    return status


async def searched(sender: Sender) -> dict[str, Any]:
    """A sync search of two NIKs; its request message."""
    message = {
        "transaction_id": uuid.uuid4().hex[:20],
        "search_request": [
            {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now_iso(),
                "search_criteria": {
                    "query_type": "idtype-value",
                    "query": {"type": "NIK", "value": f"317101010190{n:04d}"},
                },
            }
            for n in (1, 2)
        ],
    }
    response = await sender.post("/registry/sync/search", message, action="search")
    assert response.status_code == 200, response.text
    return message


class TestSearches:
    async def test_by_transaction_id(self, dci_sender: Sender) -> None:
        message = await searched(dci_sender)
        status = await sync_status(
            dci_sender, status_message("search", "transaction_id", message["transaction_id"])
        )
        assert status["txn_type"] == "search"
        result = status["txn_status"]
        assert result["transaction_id"] == message["transaction_id"]
        assert [(i["reference_id"], i["status"]) for i in result["search_response"]] == [
            (item["reference_id"], "succ") for item in message["search_request"]
        ]

    async def test_by_reference_ids_names_the_unknown_ones(self, dci_sender: Sender) -> None:
        message = await searched(dci_sender)
        known = message["search_request"][1]["reference_id"]
        status = await sync_status(
            dci_sender, status_message("search", "reference_id_list", [known, "nope"])
        )
        items = status["txn_status"]["search_response"]
        assert [(i["reference_id"], i["status"], i.get("status_reason_code")) for i in items] == [
            (known, "succ", None),
            ("nope", "rjct", "rjct.reference_id.invalid"),
        ]

    async def test_by_correlation_id(self, dci_sender: Sender) -> None:
        message = await searched(dci_sender)
        first = await sync_status(
            dci_sender, status_message("search", "transaction_id", message["transaction_id"])
        )
        correlation_id = first["txn_status"]["correlation_id"]
        again = await sync_status(
            dci_sender, status_message("search", "correlation_id", correlation_id)
        )
        assert again["txn_status"] == first["txn_status"]

    async def test_another_sender_sees_nothing(
        self,
        dci_sender: Sender,
        registry_service: RunningService,
        auth_header: Headers,
        callback: CallbackEndpoint,
    ) -> None:
        message = await searched(dci_sender)
        other = await register_sender(registry_service, auth_header, callback)
        status = await sync_status(
            other, status_message("search", "transaction_id", message["transaction_id"])
        )
        assert status["txn_status"]["search_response"] == []

    @pytest.mark.parametrize(
        ("txn_type", "attribute_type", "value"),
        [
            ("receipt", "transaction_id", "t"),
            ("search", "mobile_number", "t"),
            ("search", "reference_id_list", "not-a-list"),
        ],
    )
    async def test_what_it_cannot_look_up_is_an_error(
        self, dci_sender: Sender, txn_type: str, attribute_type: str, value: Any
    ) -> None:
        envelope = dci_sender.envelope(
            "txn-status", status_message(txn_type, attribute_type, value)
        )
        response = await dci_sender.send(SYNC_STATUS, envelope)
        assert response.status_code == 400
        assert response.json()["message"]["error"]["code"] == "err.request.bad"


class TestSubscriptions:
    async def test_reports_the_current_state_of_each_subscription(self, dci_sender: Sender) -> None:
        subscribed = await subscribe(dci_sender, criteria(), criteria(reg_event_type="Nope"))
        transaction_id = subscribed["transaction_id"]
        code = subscribed["subscribe_response"][0]["subscriptions"][0]["code"]

        def states(status: dict[str, Any]) -> list[tuple[str, str | None]]:
            return [
                (
                    item["status"],
                    item["data"]["reg_records"][0]["status"] if "data" in item else None,
                )
                for item in status["txn_status"]["search_response"]
            ]

        by_transaction = status_message("subscribe", "transaction_id", transaction_id)
        status = await sync_status(dci_sender, by_transaction)
        assert status["txn_type"] == "subscribe"
        assert states(status) == [("succ", "subscribe"), ("rjct", None)]
        assert (
            status["txn_status"]["subscribe_response"][0]["reference_id"]
            == (subscribed["subscribe_response"][0]["reference_id"])
        )

        await unsubscribe(dci_sender, [code])
        by_code = status_message("subscribe", "subscription_code_list", [code])
        status = await sync_status(dci_sender, by_code)
        assert ("succ", "unsubscribe") in states(status)


class TestAsync:
    async def test_acks_then_calls_back_txn_on_status(
        self, dci_sender: Sender, callback: CallbackEndpoint, registry_key: RegistryKey
    ) -> None:
        message = await searched(dci_sender)
        request = status_message("search", "transaction_id", message["transaction_id"])
        envelope = dci_sender.envelope("txn-status", request)
        assert spec.validate_request(STATUS, envelope) == []
        response = await dci_sender.send(STATUS, envelope)
        assert response.status_code == 202, response.text
        spec.validate_response(STATUS, response.json(), status=202)

        (received,) = await callback.wait_for(1, action="txn-on-status")
        registry_key.verify(received.body)
        assert spec.validate_request("/registry/txn/on-status", received.body) == []
        result = received.body["message"]["txnstatus_response"]["txn_status"]
        assert [i["status"] for i in result["search_response"]] == ["succ", "succ"]

    async def test_a_header_rejection_is_called_back(
        self, dci_sender: Sender, callback: CallbackEndpoint
    ) -> None:
        request = status_message("search", "transaction_id", "t")
        envelope = dci_sender.envelope("txn-status", request, action="search")
        response = await dci_sender.send(STATUS, envelope)
        assert response.status_code == 202
        (received,) = await callback.wait_for(1)
        assert received.body["header"]["status"] == "rjct"
        assert received.body["header"]["status_reason_code"] == "rjct.action.invalid"
        assert spec.validate_request("/registry/txn/on-status", received.body) == []
