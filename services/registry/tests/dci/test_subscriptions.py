"""Subscribe and unsubscribe: ACK, then signed on-subscribe / on-unsubscribe callbacks with
subscription codes; the spec's reason codes per item; the published misspellings accepted."""

from __future__ import annotations

import uuid
from typing import Any

from registry.dci import spec
from registry.nik import nik_problems
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch

from .conftest import CallbackEndpoint, Headers, RegistryKey, Sender, now_iso, register_sender
from .registry_data import BALIKPAPAN, SAMARINDA, add_person, fresh_village

SUBSCRIBE = "/registry/subscribe"
UNSUBSCRIBE = "/registry/unsubscribe"


def criteria(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "reg_type": "ns:org:RegistryType:Social",
        "reg_event_type": "spdci-common:RegistryEventType:Death",
        "filter_type": "predicate",
        "filter": [
            {
                "seq_num": 1,
                "expression1": {
                    "attribute_name": "location",
                    "operator": "eq",
                    "attribute_value": f"64{uuid.uuid4().int % 100:02d}",
                },
            }
        ],
        "notify_record_type": "Member",
    }
    value.update(overrides)
    return value


def subscribe_message(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "transaction_id": uuid.uuid4().hex[:20],
        "subscribe_request": [
            {"reference_id": uuid.uuid4().hex, "timestamp": now_iso(), "subscribe_criteria": c}
            for c in items
        ],
    }


def unsubscribe_message(codes: list[str], *, key: str = "subscription_codes") -> dict[str, Any]:
    return {"transaction_id": uuid.uuid4().hex[:20], "timestamp": now_iso(), key: codes}


async def subscribe(sender: Sender, *items: dict[str, Any]) -> dict[str, Any]:
    """Subscribe and return the on-subscribe message (checked: signed, spec-valid)."""
    before = len(sender.callback.requests)
    envelope = sender.envelope("subscribe", subscribe_message(*items))
    assert spec.validate_request(SUBSCRIBE, envelope) == []
    response = await sender.send(SUBSCRIBE, envelope)
    assert response.status_code == 202, response.text
    spec.validate_response(SUBSCRIBE, response.json(), status=202)
    received = await sender.callback.wait_for(before + 1)
    body = received[before].body
    assert body["header"]["action"] == "on-subscribe"
    assert spec.validate_request("/registry/on-subscribe", body) == []
    message: dict[str, Any] = body["message"]
    assert message["correlation_id"] == response.json()["message"]["correlation_id"]
    return message


async def unsubscribe(
    sender: Sender, codes: list[str], *, key: str = "subscription_codes", **message_fields: Any
) -> dict[str, Any]:
    before = len(sender.callback.requests)
    message = {**unsubscribe_message(codes, key=key), **message_fields}
    response = await sender.post(UNSUBSCRIBE, message, action="unsubscribe")
    assert response.status_code == 202, response.text
    received = await sender.callback.wait_for(before + 1)
    body = received[before].body
    assert body["header"]["action"] == "on-unsubscribe"
    assert spec.validate_request("/registry/on-unsubscribe", body) == []
    answer: dict[str, Any] = body["message"]
    return answer


class TestSubscribe:
    async def test_codes_come_back_signed_to_on_subscribe(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_settings: RegistrySettings,
    ) -> None:
        message = await subscribe(dci_sender, criteria())
        registry_key.verify(dci_sender.callback.requests[-1].body)
        (item,) = message["subscribe_response"]
        assert item["status"] == "succ", item
        (subscription,) = item["subscriptions"]
        assert subscription["status"] == "subscribe"
        assert subscription["reg_event_type"] == "DEATH"
        rows = await fetch(
            registry_settings,
            "SELECT status, reg_event_type, notify_record_type, callback_uri, caller, purpose "
            "FROM dci_subscriptions WHERE code = $1",
            subscription["code"],
        )
        (row,) = rows
        assert (row["status"], row["reg_event_type"], row["notify_record_type"]) == (
            "subscribe",
            "DEATH",
            "Member",
        )
        assert row["callback_uri"] == dci_sender.callback.url
        assert '"agency": "BPJS"' in row["caller"]

    async def test_items_are_rejected_with_the_spec_s_reasons(self, dci_sender: Sender) -> None:
        same = criteria()
        message = await subscribe(
            dci_sender,
            same,
            same,
            criteria(reg_event_type="Marriage"),
            criteria(notify_record_type="Household"),
            criteria(
                filter=[
                    {
                        "expression1": {
                            "attribute_name": "shoe_size",
                            "operator": "eq",
                            "attribute_value": 42,
                        }
                    }
                ]
            ),
        )
        reasons = [
            (item["status"], item.get("status_reason_code"))
            for item in message["subscribe_response"]
        ]
        assert reasons == [
            ("succ", None),
            ("rjct", "rjct.event.already_subscribed"),
            ("rjct", "rjct.notify_types.invalid"),
            ("rjct", "rjct.notify_types.invalid"),
            ("rjct", "rjct.notify_details.invalid"),
        ]

    async def test_reference_and_timestamp_problems(self, dci_sender: Sender) -> None:
        message = subscribe_message(criteria(), criteria(), criteria())
        items = message["subscribe_request"]
        items[1]["reference_id"] = items[0]["reference_id"]
        items[2]["timestamp"] = "later"
        response = await dci_sender.post(SUBSCRIBE, message, action="subscribe")
        assert response.status_code == 202
        (received,) = await dci_sender.callback.wait_for(1)
        reasons = [
            item.get("status_reason_code")
            for item in received.body["message"]["subscribe_response"]
        ]
        assert reasons == [None, "rjct.reference_id.duplicate", "rjct.timestamp.invalid"]

    async def test_the_published_subscibe_spelling(self, dci_sender: Sender) -> None:
        message = subscribe_message(criteria())
        message["subscibe_request"] = message.pop("subscribe_request")
        response = await dci_sender.post(SUBSCRIBE, message, action="subscibe")
        assert response.status_code == 202, response.text
        (received,) = await dci_sender.callback.wait_for(1)
        assert received.body["header"]["status"] == "succ"
        (item,) = received.body["message"]["subscribe_response"]
        assert item["status"] == "succ"


class TestFollowedPeople:
    """A subscription that follows given people: ``idtype-value`` on NIK, UIN or PERSON_ID."""

    async def test_malformed_unknown_and_out_of_region_people_are_rjct_person_id_invalid(
        self,
        dci_sender: Sender,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        inside = await add_person(registry_service, auth_header, village=fresh_village()[0])
        outside = await add_person(
            registry_service, auth_header, village=fresh_village(SAMARINDA)[0]
        )
        dci_sender.regions = (BALIKPAPAN,)  # the subscriber's token sees Balikpapan only
        malformed = "6471013213800001"  # day 32 of month 13
        unknown = "9999991503800001"  # well formed, issued in no district of the registry

        def follow(value: str, id_type: str = "NIK") -> dict[str, Any]:
            return criteria(
                reg_event_type="UPDATE",
                filter_type="idtype-value",
                filter={"type": id_type, "value": value},
                notify_record_type="Member",
            )

        message = await subscribe(
            dci_sender,
            follow(inside["nik"]),
            follow(malformed),
            follow(unknown, "UIN"),
            follow(outside["nik"]),
            follow("not-a-registry-id", "PERSON_ID"),
            follow(outside["id"], "PERSON_ID"),
        )
        items = message["subscribe_response"]
        assert items[0]["status"] == "succ", items[0]
        assert [item.get("status_reason_code") for item in items[1:]] == [
            "rjct.person_id.invalid"
        ] * 5
        reasons = [item.get("status_reason_message", "") for item in items]
        for problem in nik_problems(malformed):
            assert problem in reasons[1]
        # Unknown, and outside the caller's regions, read alike: no existence oracle.
        assert reasons[2].replace(unknown, "?") == reasons[3].replace(outside["nik"], "?")
        assert "UUID" in reasons[4]
        assert "no such person" in reasons[5]
        audited = await fetch(
            registry_settings,
            "SELECT resource_id FROM audit_log WHERE purpose LIKE 'SPDCI subscription%' "
            "AND resource_id = ANY($1)",
            [inside["id"], outside["id"]],
        )
        assert [row["resource_id"] for row in audited] == [inside["id"]]


class TestUnsubscribe:
    async def test_accepts_sunscription_codes_and_answers_subscription_codes(
        self, dci_sender: Sender, registry_settings: RegistrySettings
    ) -> None:
        subscribed = await subscribe(dci_sender, criteria(), criteria())
        codes = [item["subscriptions"][0]["code"] for item in subscribed["subscribe_response"]]
        answer = await unsubscribe(dci_sender, codes, key="sunscription_codes")
        assert answer["status"] == "succ", answer
        assert answer["subscription_codes"] == codes
        assert "sunscription_codes" not in answer
        assert answer["subscription_status"] == [
            {"code": code, "status": "unsubscribe"} for code in codes
        ]
        rows = await fetch(
            registry_settings,
            "SELECT status, unsubscribed_at FROM dci_subscriptions WHERE code = ANY($1)",
            codes,
        )
        assert [r["status"] for r in rows] == ["unsubscribe", "unsubscribe"]
        assert all(r["unsubscribed_at"] is not None for r in rows)

    async def test_unknown_repeated_and_foreign_codes(
        self,
        dci_sender: Sender,
        registry_service: RunningService,
        auth_header: Headers,
        callback: CallbackEndpoint,
    ) -> None:
        subscribed = await subscribe(dci_sender, criteria())
        (code,) = [item["subscriptions"][0]["code"] for item in subscribed["subscribe_response"]]

        unknown = await unsubscribe(dci_sender, [str(uuid.uuid4())])
        assert (unknown["status"], unknown["status_reason_code"]) == (
            "rjct",
            "rjct.subscription_code.invalid",
        )

        colleague = await register_sender(registry_service, auth_header, callback)
        foreign = await unsubscribe(colleague, [code])
        assert foreign["status_reason_code"] == "rjct.requester.invalid"

        other_agency = await register_sender(registry_service, auth_header, callback, agency="BGN")
        hidden = await unsubscribe(other_agency, [code])
        assert hidden["status_reason_code"] == "rjct.subscription_code.invalid"

        assert (await unsubscribe(dci_sender, [code]))["status"] == "succ"
        again = await unsubscribe(dci_sender, [code])
        assert again["status_reason_code"] == "rjct.event.already_unsubscribed"

    async def test_a_bad_timestamp(self, dci_sender: Sender) -> None:
        answer = await unsubscribe(dci_sender, ["x"], timestamp="soon")
        assert answer["status_reason_code"] == "rjct.timestamp.invalid"

    async def test_the_published_timesatmp_spelling(self, dci_sender: Sender) -> None:
        subscribed = await subscribe(dci_sender, criteria())
        code = subscribed["subscribe_response"][0]["subscriptions"][0]["code"]
        message = unsubscribe_message([code])
        message["timesatmp"] = message.pop("timestamp")
        response = await dci_sender.post(UNSUBSCRIBE, message, action="unsubscribe")
        assert response.status_code == 202
        received = await dci_sender.callback.wait_for(2)
        assert received[1].body["message"]["status"] == "succ"
