"""The SPDCI envelope over HTTP: the spec's examples round-trip; every ERR and header rjct path;
signature tampering; tolerated spec defects; answers valid against the spec and signed."""

from __future__ import annotations

import copy
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from registry.app import create_app
from registry.dci import signature, spec, transactions
from registry.dci.api import BASE_PATH
from registry.settings import RegistrySettings
from shared.db import session_scope
from shared.testing import RunningService, fetch, running_service

from .conftest import CallbackEndpoint, Headers, RegistryKey, Sender, now_iso, register_sender

SYNC_SEARCH = "/registry/sync/search"
SEARCH = "/registry/search"
_CRITERIA = (
    "components",
    "schemas",
    "SearchRequest",
    "properties",
    "search_request",
    "items",
    "properties",
    "search_criteria",
    "properties",
)


def spec_expression_query() -> dict[str, Any]:
    """The spec's own expression query example (``poverty_score < 5`` and so on)."""
    query = spec.document()["components"]["schemas"]["SearchRequest"]["properties"]
    query = query["search_request"]["items"]["properties"]["search_criteria"]["properties"]
    anyof = query["query"]["anyOf"][0]["properties"]
    return {"type": anyof["type"]["example"], "value": copy.deepcopy(anyof["value"]["example"])}


def spec_identifier_query(value: str | None = "3171010101900001") -> dict[str, Any]:
    """The spec's identifier example (``UIN``, which this registry reads as NIK); with
    ``value=None`` the spec's own value too (11 digits, so no NIK)."""
    branch = spec.example("components", "schemas", "SubscriptionInfo", "properties", "filter")
    properties = branch["anyOf"][1]["properties"]
    return {"type": properties["type"]["example"], "value": value or properties["value"]["example"]}


def spec_predicate_query() -> list[dict[str, Any]]:
    """A predicate built from the spec's examples (``YOB`` ``eq`` ``1980``...)."""
    branch = spec.example("components", "schemas", "SubscriptionInfo", "properties", "filter")
    expression = branch["anyOf"][2]["items"]["properties"]
    condition = expression["expression1"]["properties"]
    return [
        {
            "seq_num": expression["seq_num"]["example"],
            "expression1": {
                "attribute_name": condition["attribute_name"]["example"],
                "operator": condition["operator"]["example"],
                "attribute_value": int(
                    branch["anyOf"][1]["properties"]["value"]["allOf"][1]["example"]
                ),
            },
        }
    ]


def search_message(*criteria: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": uuid.uuid4().hex[:20],
        "search_request": [
            {"reference_id": uuid.uuid4().hex, "timestamp": now_iso(), "search_criteria": c}
            for c in criteria
        ],
    }


def pagination() -> dict[str, Any]:
    return {"page_size": 10, "page_number": 1}


async def sync_search(sender: Sender, message: dict[str, Any], **header: Any) -> dict[str, Any]:
    envelope = sender.envelope("search", message, **header)
    assert spec.validate_request(SYNC_SEARCH, envelope) == []
    response = await sender.send(SYNC_SEARCH, envelope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    spec.validate_response(SYNC_SEARCH, body)
    return body


def assert_err(response: Any, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    spec.validate_response(SEARCH, body, status=status)
    assert body["message"]["ack_status"] == "ERR"
    assert body["message"]["error"]["code"] == code


class TestSpecExamples:
    async def test_the_spec_s_queries_round_trip(
        self, dci_sender: Sender, registry_key: RegistryKey
    ) -> None:
        message = search_message(
            {
                "reg_type": "ns:org:RegistryType:Social",
                "query_type": "expression",
                "response_entity": "Group",
                "query": spec_expression_query(),
                "pagination": pagination(),
            },
            {"query_type": "idtype-value", "query": spec_identifier_query(None)},
            {
                "query_type": "predicate",
                "response_entity": "Member",
                "query": spec_predicate_query(),
                "pagination": pagination(),
            },
        )
        body = await sync_search(dci_sender, message)
        registry_key.verify(body)
        header, answer = body["header"], body["message"]
        assert header["action"] == "on-search"
        assert header["status"] == "succ"
        assert header["receiver_id"] == dci_sender.sender_id
        assert header["total_count"] == 3
        assert answer["transaction_id"] == message["transaction_id"]
        assert [item["reference_id"] for item in answer["search_response"]] == [
            item["reference_id"] for item in message["search_request"]
        ]
        statuses = [(i["status"], i.get("status_reason_code")) for i in answer["search_response"]]
        # The spec's UIN example (11 digits) cannot be a NIK: a filter rejection, spec-shaped.
        assert statuses == [("succ", None), ("rjct", "rjct.filter.invalid"), ("succ", None)]

    async def test_the_jwks_publishes_the_key_that_signs(
        self, dci_sender: Sender, registry_key: RegistryKey
    ) -> None:
        body = await sync_search(
            dci_sender,
            search_message({"query_type": "idtype-value", "query": spec_identifier_query()}),
        )
        registry_key.verify(body)
        tampered = copy.deepcopy(body)
        tampered["message"]["search_response"][0]["status"] = "rjct"
        with pytest.raises(Exception, match="does not match"):
            registry_key.verify(tampered)

    async def test_published_misspellings_and_string_counts_are_accepted(
        self, dci_sender: Sender
    ) -> None:
        message = search_message({"query_type": "idtype-value", "query": spec_identifier_query()})
        message["search_request"][0]["timesstamp"] = message["search_request"][0].pop("timestamp")
        envelope = dci_sender.envelope("search", message, total_count="1")
        assert spec.validate_request(SYNC_SEARCH, envelope) != []  # the defects, as sent
        body = await sync_search_envelope(dci_sender, envelope)
        (item,) = body["message"]["search_response"]
        assert item["status"] == "succ", item


class TestPublishedDocuments:
    async def test_the_spec_is_served_as_published(self, registry_service: RunningService) -> None:
        response = await registry_service.client.get(f"{BASE_PATH}/openapi.yaml")
        assert response.status_code == 200
        assert response.text == spec.text()

    async def test_the_registry_s_openapi_lists_the_spdci_routes(
        self, registry_service: RunningService
    ) -> None:
        paths = (await registry_service.client.get("/openapi.json")).json()["paths"]
        for path in (
            "/registry/sync/search",
            "/registry/search",
            "/registry/subscribe",
            "/registry/unsubscribe",
            "/registry/txn/status",
            "/registry/sync/txn/status",
        ):
            assert "SPDCI Social Registry" in paths[BASE_PATH + path]["post"]["tags"]

    async def test_every_process_signs_with_the_one_published_key(
        self, registry_service: RunningService, registry_settings: RegistrySettings
    ) -> None:
        """An API process and a worker process (another app on the same database) publish the
        same key, the one stored when none is configured."""
        jwks = f"{BASE_PATH}/.well-known/jwks.json"
        first = (await registry_service.client.get(jwks)).json()
        app = create_app(registry_settings, run_relay=False, run_consumers=False)
        async with running_service(app) as other:
            assert (await other.client.get(jwks)).json() == first

    async def test_a_configured_key_is_used_and_not_stored(
        self, registry_settings: RegistrySettings
    ) -> None:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        settings = registry_settings.model_copy(
            update={"dci_signing_key": SecretStr(pem), "dci_signing_key_id": "configured"}
        )
        app = create_app(settings, run_relay=False, run_consumers=False)
        async with running_service(app) as other:
            body = (await other.client.get(f"{BASE_PATH}/.well-known/jwks.json")).json()
        assert body["keys"] == [signature.public_jwk(key, kid="simpul-registry|configured|ed25519")]
        stored = await fetch(
            registry_settings, "SELECT 1 FROM dci_registry_keys WHERE key_id = 'configured'"
        )
        assert stored == []


class TestAuthentication:
    async def test_no_token_is_401_http_error(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        response = await dci_sender.send(SYNC_SEARCH, envelope, headers={})
        assert response.status_code == 401
        spec.validate_response(SYNC_SEARCH, response.json(), status=401)
        assert response.json()["errors"][0]["code"] == "err.request.unauthorized"

    async def test_a_token_without_registry_read_is_403(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        response = await dci_sender.send(
            SYNC_SEARCH, envelope, headers=dci_sender.headers(scopes=["registry:stats"])
        )
        assert response.status_code == 403
        spec.validate_response(SYNC_SEARCH, response.json(), status=403)
        assert response.json()["errors"][0]["code"] == "err.request.forbidden"


class TestEnvelopeErrors:
    async def test_not_json(self, dci_sender: Sender) -> None:
        response = await dci_sender.service.client.post(
            BASE_PATH + SYNC_SEARCH,
            content=b'{"header": ',
            headers={**dci_sender.headers(), "content-type": "application/json"},
        )
        assert_err(response, "err.request.bad")

    async def test_no_header(self, dci_sender: Sender) -> None:
        response = await dci_sender.send(SYNC_SEARCH, {"message": search_message()})
        assert_err(response, "err.request.bad")

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"signature": 42}, "err.signature.invalid"),
            ({"header": {"message_id": "1", "action": "search"}}, "err.sender_id.invalid"),
            ({"message": None}, "err.request.bad"),
            ({"header": "text"}, "err.request.bad"),
        ],
    )
    async def test_malformed_envelopes(
        self, dci_sender: Sender, change: dict[str, Any], code: str
    ) -> None:
        envelope = {**dci_sender.envelope("search", search_message()), **change}
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), code)

    async def test_a_signed_message_that_is_no_object(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", "text")
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.request.bad")

    async def test_a_header_without_message_id(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        del envelope["header"]["message_id"]
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.request.bad")

    async def test_an_endless_message_id(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message(), message_id="m" * 5000)
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.request.bad")

    async def test_unregistered_sender(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message(), sender_id="nobody.example")
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.sender_id.invalid")

    async def test_a_sender_of_another_agency(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        response = await dci_sender.send(
            SYNC_SEARCH, envelope, headers=dci_sender.headers(agency="BGN")
        )
        assert_err(response, "err.sender_id.invalid")

    async def test_a_deactivated_sender(self, dci_sender: Sender, auth_header: Headers) -> None:
        response = await dci_sender.service.client.patch(
            f"/v1/dci/senders/{dci_sender.sender_id}",
            json={"active": False},
            headers=auth_header(scopes=["registry:admin"]),
        )
        assert response.status_code == 200, response.text
        envelope = dci_sender.envelope("search", search_message())
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.sender_id.invalid")

    async def test_missing_signature(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        del envelope["signature"]
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.missing")

    async def test_other_receiver(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message(), receiver_id="crvs.example")
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.receiver_id.invalid")

    async def test_encrypted_messages_are_refused(self, dci_sender: Sender) -> None:
        encrypted = {
            "header": {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k"},
            "ciphertext": "eyJ",
            "encrypted_key": "a",
            "tag": "b",
            "iv": "c",
        }
        envelope = dci_sender.envelope("search", encrypted, is_msg_encrypted=True)
        assert spec.validate_request(SYNC_SEARCH, envelope) == []
        response = await dci_sender.send(SYNC_SEARCH, envelope)
        assert_err(response, "err.encryption.invalid")
        assert "not accepted" in response.json()["message"]["error"]["message"]

    async def test_an_unsupported_version(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message(), version="2.0.0")
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.version.not_supported")

    async def test_a_message_without_transaction_id(self, dci_sender: Sender) -> None:
        message = search_message()
        del message["transaction_id"]
        envelope = dci_sender.envelope("search", message)
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.request.bad")

    async def test_async_without_sender_uri(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message(), sender_uri=None)
        del envelope["header"]["sender_uri"]
        envelope["signature"] = dci_sender.sign(envelope["header"], envelope["message"])
        assert_err(await dci_sender.send(SEARCH, envelope), "err.sender_uri.invalid")


class TestSignatureTampering:
    async def test_message_changed_after_signing(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope(
            "search",
            search_message({"query_type": "idtype-value", "query": spec_identifier_query()}),
        )
        envelope["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "1"
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_header_changed_after_signing(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["header"]["message_id"] = str(uuid.uuid4())
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_signed_with_another_key(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = dci_sender.sign(
            envelope["header"], envelope["message"], key=Ed25519PrivateKey.generate()
        )
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_expired(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = dci_sender.sign(
            envelope["header"],
            envelope["message"],
            created=int(time.time()) - 3600,
            validity_seconds=60,
        )
        response = await dci_sender.send(SYNC_SEARCH, envelope)
        assert_err(response, "err.signature.invalid")
        assert "expired" in response.json()["message"]["error"]["message"]

    async def test_valid_for_too_long(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = dci_sender.sign(
            envelope["header"], envelope["message"], validity_seconds=2 * 24 * 3600
        )
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_unknown_key_id(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = envelope["signature"].replace("|k1|", "|k9|")
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_signed_by_another_sender(
        self,
        dci_sender: Sender,
        registry_service: RunningService,
        auth_header: Headers,
        callback: CallbackEndpoint,
    ) -> None:
        other = await register_sender(registry_service, auth_header, callback)
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = other.sign(envelope["header"], envelope["message"])
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_the_signature_may_come_as_an_http_header(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope(
            "search",
            search_message({"query_type": "idtype-value", "query": spec_identifier_query()}),
        )
        value = envelope.pop("signature")
        response = await dci_sender.send(
            SYNC_SEARCH, envelope, headers={**dci_sender.headers(), "Signature": value}
        )
        assert response.status_code == 200, response.text
        assert response.json()["header"]["status"] == "succ"

    async def test_garbage(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope("search", search_message())
        envelope["signature"] = "Signature: whatever"
        assert_err(await dci_sender.send(SYNC_SEARCH, envelope), "err.signature.invalid")

    async def test_open_spp_s_and_the_spec_s_spellings_verify(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope(
            "search",
            search_message({"query_type": "idtype-value", "query": spec_identifier_query()}),
        )
        envelope["signature"] = "Signature:  " + envelope["signature"].replace(
            "kidId=", "keyId="
        ).replace('namespace="dci"', 'namespace="spdci"')
        body = await sync_search_envelope(dci_sender, envelope)
        assert body["header"]["status"] == "succ"


async def sync_search_envelope(sender: Sender, envelope: dict[str, Any]) -> dict[str, Any]:
    response = await sender.send(SYNC_SEARCH, envelope)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    spec.validate_response(SYNC_SEARCH, body)
    return body


class TestHeaderRejections:
    """Authentic messages with a bad header: answered with ``status: rjct`` in the header."""

    @pytest.mark.parametrize(
        ("header", "code"),
        [
            ({"version": "one"}, "rjct.version.invalid"),
            ({"message_ts": "yesterday"}, "rjct.message_ts.invalid"),
            ({"message_ts": "2030-01-01T00:00:00+07:00"}, "rjct.message_ts.invalid"),
            ({"action": "subscribe"}, "rjct.action.invalid"),
            ({"action": "on-search"}, "rjct.action.not_supported"),
            ({"total_count": 5}, "rjct.total_count.invalid"),
            ({"total_count": "many"}, "rjct.total_count.invalid"),
            ({"total_count": 1_000_000}, "rjct.total_count.limit_exceeded"),
        ],
    )
    async def test_sync(
        self, dci_sender: Sender, registry_key: RegistryKey, header: dict[str, Any], code: str
    ) -> None:
        envelope = dci_sender.envelope("search", search_message(), **header)
        response = await dci_sender.send(SYNC_SEARCH, envelope)
        assert response.status_code == 200, response.text
        body = response.json()
        spec.validate_response(SYNC_SEARCH, body)
        registry_key.verify(body)
        assert body["header"]["status"] == "rjct"
        assert body["header"]["status_reason_code"] == code

    async def test_a_replayed_message_id(self, dci_sender: Sender) -> None:
        envelope = dci_sender.envelope(
            "search",
            search_message({"query_type": "idtype-value", "query": spec_identifier_query()}),
        )
        first = await sync_search_envelope(dci_sender, envelope)
        assert first["header"]["status"] == "succ"
        again = await sync_search_envelope(dci_sender, envelope)
        assert again["header"]["status"] == "rjct"
        assert again["header"]["status_reason_code"] == "rjct.message_id.duplicate"
        assert again["message"]["search_response"] == []

    async def test_the_limit_is_a_setting(
        self, dci_sender: Sender, registry_settings: RegistrySettings
    ) -> None:
        limit = registry_settings.dci_max_items_per_message
        criteria = {"query_type": "idtype-value", "query": spec_identifier_query()}
        envelope = dci_sender.envelope("search", search_message(*[criteria] * (limit + 1)))
        body = await sync_search_envelope(dci_sender, envelope)
        assert body["header"]["status_reason_code"] == "rjct.total_count.limit_exceeded"


class TestItemRejections:
    async def test_items_are_rejected_one_by_one(self, dci_sender: Sender) -> None:
        good = {"query_type": "idtype-value", "query": spec_identifier_query()}
        message = search_message(good, good, good, good, {"query": {"type": "UIN"}})
        items = message["search_request"]
        items[1]["reference_id"] = items[0]["reference_id"]
        items[2]["timestamp"] = "not a time"
        items[3]["reference_id"] = ""
        body = await sync_search_envelope(dci_sender, dci_sender.envelope("search", message))
        statuses = [
            (item["status"], item.get("status_reason_code"))
            for item in body["message"]["search_response"]
        ]
        assert statuses == [
            ("succ", None),
            ("rjct", "rjct.reference_id.duplicate"),
            ("rjct", "rjct.timestamp.invalid"),
            ("rjct", "rjct.reference_id.invalid"),
            ("rjct", "rjct.search_criteria.invalid"),
        ]


class TestTransactionsAreRecorded:
    async def test_a_sync_search_is_a_succeeded_transaction(
        self, dci_sender: Sender, registry_settings: RegistrySettings
    ) -> None:
        message = search_message({"query_type": "idtype-value", "query": spec_identifier_query()})
        body = await sync_search(dci_sender, message)
        rows = await fetch(
            registry_settings,
            "SELECT id::text, status, txn_type, reference_ids FROM dci_transactions "
            "WHERE sender_id = $1 AND transaction_id = $2",
            dci_sender.sender_id,
            message["transaction_id"],
        )
        assert [(r["id"], r["status"], r["txn_type"]) for r in rows] == [
            (body["message"]["correlation_id"], "succ", "search")
        ]
        assert rows[0]["reference_ids"] == [message["search_request"][0]["reference_id"]]

    async def test_message_ids_are_forgotten_once_no_signature_can_replay_them(
        self, registry_service: RunningService, registry_settings: RegistrySettings
    ) -> None:
        sender_id = f"old-{uuid.uuid4().hex[:8]}"
        await fetch(
            registry_settings,
            "INSERT INTO dci_messages (sender_id, message_id, action, received_at) VALUES "
            "($1, 'old', 'search', now() - interval '3 days'), ($1, 'new', 'search', now())",
            sender_id,
        )
        async with session_scope(registry_service.runtime.sessionmaker) as session:
            await transactions.forget_old_messages(session, older_than=timedelta(days=2))
        rows = await fetch(
            registry_settings, "SELECT message_id FROM dci_messages WHERE sender_id = $1", sender_id
        )
        assert [r["message_id"] for r in rows] == ["new"]
