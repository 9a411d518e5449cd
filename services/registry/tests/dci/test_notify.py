"""Subscriptions turn registry changes into signed ``notify`` callbacks: a death recorded through
the REST API reaches the subscriber's callback server, a filter that does not match gets
nothing, and the notify is audited like any read of personal data."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from registry.dci import spec
from registry.dci.events import canonical_event_type, dci_event_types
from registry.events import HOUSEHOLD_DECILE_CHANGED, PERSON_DIED, PERSON_MOVED, PERSON_REGISTERED
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch

from .conftest import RegistryKey, Sender, now_iso
from .registry_data import (
    BALIKPAPAN,
    READ,
    SAMARINDA,
    Headers,
    add_person,
    create_household,
    family,
    fresh_village,
    identifiers,
    predicate,
)


async def subscribe(sender: Sender, **criteria: Any) -> dict[str, Any]:
    """Subscribe through /registry/subscribe; the SubscriptionInfo the on-subscribe carried."""
    transaction_id = uuid.uuid4().hex[:20]
    message = {
        "transaction_id": transaction_id,
        "subscribe_request": [
            {
                "reference_id": uuid.uuid4().hex,
                "timestamp": now_iso(),
                "subscribe_criteria": {
                    "version": "1.0.0",
                    "reg_type": "ns:org:RegistryType:Social",
                    "authorize": {
                        "@type": "Authorize",
                        "ts": now_iso(),
                        "purpose": {"text": "Stop PKH payments on death", "code": "PKH-STOP"},
                    },
                    **criteria,
                },
                "locale": "eng",
            }
        ],
    }
    before = len([r for r in sender.callback.requests if r.action == "on-subscribe"])
    response = await sender.post("/registry/subscribe", message, action="subscribe")
    assert response.status_code == 202, response.text
    received = await sender.callback.wait_for(before + 1, action="on-subscribe")
    [answer] = received[-1].body["message"]["subscribe_response"]
    assert answer["status"] == "succ", answer
    [info] = answer["subscriptions"]
    return {**info, "transaction_id": transaction_id}


async def notifies(sender: Sender, count: int = 1) -> list[dict[str, Any]]:
    return [r.body for r in await sender.callback.wait_for(count, action="notify")]


async def deliveries_of(settings: RegistrySettings, code: str) -> int:
    rows = await fetch(
        settings, "SELECT count(*) AS n FROM dci_deliveries WHERE subscription_code = $1", code
    )
    return int(rows[0]["n"])


class TestDeath:
    async def test_a_recorded_death_reaches_the_subscriber_signed_and_audited(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        registry_key: RegistryKey,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=0)
        watching = await subscribe(
            dci_sender,
            reg_event_type="spdci-common:RegistryEventType:Death",
            filter_type="predicate",
            filter=predicate(("location", "eq", village), ("age", "ge", 18)),
            notify_record_type="Member",
        )
        assert watching["reg_event_type"] == "DEATH"
        elsewhere = await subscribe(
            dci_sender,
            reg_event_type="DEATH",
            filter_type="predicate",
            filter=predicate(("location", "eq", fresh_village()[0])),
            notify_record_type="Member",
        )

        head = household["head"]
        died = await registry_service.client.post(
            f"/v1/persons/{head['id']}/death",
            json={"death_date": "2026-11-20", "source": "dukcapil"},
            headers=auth_header(),
        )
        assert died.status_code == 200, died.text

        [body] = await notifies(dci_sender)
        spec.validate_response("/registry/notify", body)
        registry_key.verify(body)
        assert body["header"]["action"] == "notify"
        message = body["message"]
        assert message["transaction_id"] == watching["transaction_id"]
        [event] = message["notify_event"]
        assert event["data"]["reg_record_type"] == "Member"
        # DEATH is not among the types the spec's notify enumerates: the field is left out and
        # the subscriber knows the type from its subscription (the transaction id).
        assert "reg_event_type" not in event["data"]
        [record] = event["data"]["reg_records"]
        assert identifiers(record, "member_identifier") == {
            "NIK": head["nik"],
            "PERSON_ID": head["id"],
        }
        attributes = {
            a["attribute_name"]: a["attribute_value"] for a in record["additional_attributes"]
        }
        assert attributes["status"] == "deceased"
        assert attributes["death_date"] == "2026-11-20"

        # The other subscription was evaluated in the same transaction, and matched nothing.
        assert await deliveries_of(registry_settings, elsewhere["code"]) == 0
        assert await deliveries_of(registry_settings, watching["code"]) == 1

        rows = await fetch(
            registry_settings,
            "SELECT agency, purpose, action FROM audit_log WHERE resource_id = $1"
            " AND purpose LIKE '%PKH payments%'",
            head["id"],
        )
        assert [(r["agency"], r["action"]) for r in rows] == [(dci_sender.agency, "read")]

    async def test_a_death_outside_the_filter_sends_nothing(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=1)
        adults_only = await subscribe(
            dci_sender,
            reg_event_type="DEATH",
            filter_type="predicate",
            filter=predicate(("location", "eq", village), ("age", "ge", 18)),
            notify_record_type="Member",
        )
        whole_village = await subscribe(
            dci_sender,
            reg_event_type="DEATH",
            filter_type="expression",
            filter={"expression": {"collection": "Member", "query": {"location": village}}},
            notify_record_type="Member",
        )
        child = household["children"][0]
        died = await registry_service.client.post(
            f"/v1/persons/{child['id']}/death",
            json={"death_date": "2026-11-21", "source": "health_facility"},
            headers=auth_header(),
        )
        assert died.status_code == 200, died.text
        [body] = await notifies(dci_sender)
        assert body["message"]["transaction_id"] == whole_village["transaction_id"]
        assert await deliveries_of(registry_settings, adults_only["code"]) == 0


class TestOtherEvents:
    async def test_a_decile_change_notifies_the_group(
        self,
        registry_service: RunningService,
        registry_key: RegistryKey,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, decile=4)
        await subscribe(
            dci_sender,
            reg_event_type="DECILE_CHANGE",
            filter_type="expression",
            filter={
                "type": "ns:org:QueryType:expression",
                "value": {
                    "expression": {
                        "collection": "Group",
                        "query": {"$and": [{"location": village}, {"poverty_score": {"$lte": 2}}]},
                    }
                },
            },
            notify_record_type="Group",
        )
        for decile in (3, 1):  # only the second change enters the filter
            patched = await registry_service.client.patch(
                f"/v1/households/{household['id']}", json={"decile": decile}, headers=auth_header()
            )
            assert patched.status_code == 200, patched.text
        [body] = await notifies(dci_sender)
        spec.validate_response("/registry/notify", body)
        registry_key.verify(body)
        [event] = body["message"]["notify_event"]
        [group] = event["data"]["reg_records"]
        assert identifiers(group, "group_identifier")["KK"] == household["kk"]
        assert group["poverty_score"] == 1
        assert group["poverty_score_type"] == "DTSEN_DECILE_1_10"

    async def test_a_new_household_member_with_the_subscriber_s_projection(
        self,
        registry_service: RunningService,
        registry_key: RegistryKey,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await create_household(registry_service, auth_header, village=village)
        dci_sender.scopes = (READ,)  # the subscriber's token reveals no identity
        await subscribe(
            dci_sender,
            reg_event_type="NewHouseHoldMember",
            filter_type="idtype-value",
            filter={"type": "KK", "value": household["kk"]},
            notify_record_type="Member",
        )
        baby = await add_person(
            registry_service,
            auth_header,
            village=village,
            household=household,
            relationship="child",
            birth_date=date.today(),
        )
        [body] = await notifies(dci_sender)
        spec.validate_response("/registry/notify", body)
        registry_key.verify(body)
        [event] = body["message"]["notify_event"]
        assert event["data"]["reg_event_type"] == "NewHouseHoldMember"
        [member] = event["data"]["reg_records"]
        assert identifiers(member, "member_identifier") == {"PERSON_ID": baby["id"]}
        assert "name" not in member["demographic_info"]

    async def test_unsubscribed_codes_are_not_notified(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=0)
        gone = await subscribe(
            dci_sender,
            reg_event_type="DEATH",
            filter_type="predicate",
            filter=predicate(("location", "eq", village)),
            notify_record_type="Member",
        )
        unsubscribe = {
            "transaction_id": uuid.uuid4().hex[:20],
            "timestamp": now_iso(),
            "subscription_codes": [gone["code"]],
        }
        response = await dci_sender.post("/registry/unsubscribe", unsubscribe, action="unsubscribe")
        assert response.status_code == 202, response.text
        await dci_sender.callback.wait_for(1, action="on-unsubscribe")
        kept = await subscribe(
            dci_sender,
            reg_event_type="DEATH",
            filter_type="predicate",
            filter=predicate(("location", "eq", village), ("sex", "eq", "female")),
            notify_record_type="Group",
        )
        died = await registry_service.client.post(
            f"/v1/persons/{household['spouse']['id']}/death",
            json={"death_date": "2026-11-22", "source": "family"},
            headers=auth_header(),
        )
        assert died.status_code == 200, died.text
        [body] = await notifies(dci_sender)
        assert body["message"]["transaction_id"] == kept["transaction_id"]
        [group] = body["message"]["notify_event"][0]["data"]["reg_records"]
        assert identifiers(group, "group_identifier")["KK"] == household["kk"]

        assert await deliveries_of(registry_settings, gone["code"]) == 0

    async def test_a_move_onto_another_card_is_a_move_and_a_new_household_member(
        self,
        registry_service: RunningService,
        registry_key: RegistryKey,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        old_village, _ = fresh_village()
        new_village, _ = fresh_village()
        leaving = await family(registry_service, auth_header, village=old_village, children=1)
        joining = await create_household(registry_service, auth_header, village=new_village)
        for event_type in ("MOVE", "NewHouseHoldMember"):
            await subscribe(
                dci_sender,
                reg_event_type=event_type,
                filter_type="predicate",
                filter=predicate(("location", "eq", new_village)),
                notify_record_type="Group",
            )
        child = leaving["children"][0]
        moved = await registry_service.client.post(
            f"/v1/persons/{child['id']}/move",
            json={
                "village_code": new_village,
                "household_id": joining["id"],
                "relationship": "other",
            },
            headers=auth_header(),
        )
        assert moved.status_code == 200, moved.text
        bodies = await notifies(dci_sender, 2)
        event_types = set()
        for body in bodies:
            spec.validate_response("/registry/notify", body)
            registry_key.verify(body)
            [event] = body["message"]["notify_event"]
            event_types.add(event["data"].get("reg_event_type"))
            [group] = event["data"]["reg_records"]
            assert identifiers(group, "group_identifier")["KK"] == joining["kk"]
            assert [
                identifiers(m, "member_identifier")["PERSON_ID"] for m in group["member_list"]
            ] == [child["id"]]
        assert event_types == {None, "NewHouseHoldMember"}  # MOVE is not in the notify enum


class TestSubscriberRights:
    async def test_a_regional_subscriber_hears_nothing_of_other_regions(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        dci_sender: Sender,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village(BALIKPAPAN)
        household = await family(registry_service, auth_header, village=village, children=0)
        watched = {
            "reg_event_type": "DEATH",
            "filter_type": "predicate",
            "filter": predicate(("location", "eq", village)),
        }
        dci_sender.regions = (SAMARINDA,)  # the same filter, subscribed by Samarinda's staff
        regional = await subscribe(dci_sender, notify_record_type="Member", **watched)
        dci_sender.regions = ()
        national = await subscribe(dci_sender, notify_record_type="Group", **watched)
        died = await registry_service.client.post(
            f"/v1/persons/{household['head']['id']}/death",
            json={"death_date": "2026-11-23", "source": "dukcapil"},
            headers=auth_header(),
        )
        assert died.status_code == 200, died.text
        [body] = await notifies(dci_sender)
        assert body["message"]["transaction_id"] == national["transaction_id"]
        # Both were evaluated in the event's one transaction: the regional one matched nothing.
        assert await deliveries_of(registry_settings, regional["code"]) == 0


class TestEventTypes:
    def test_subscribers_spellings(self) -> None:
        assert canonical_event_type("spdci-common:RegistryEventType:Death") == "DEATH"
        assert canonical_event_type("spdci:common:RegistryEventType:NewHouseHoldMember") == (
            "NewHouseHoldMember"
        )
        assert canonical_event_type("register") == "REGISTER"
        assert canonical_event_type("Decile_Change") == "DECILE_CHANGE"
        assert canonical_event_type("LiveBirth") is None

    def test_registry_events_as_dci_types(self) -> None:
        assert dci_event_types(PERSON_DIED) == ("DEATH",)
        assert dci_event_types(PERSON_MOVED) == ("MOVE",)
        assert dci_event_types(PERSON_MOVED, joined_household=True) == (
            "MOVE",
            "NewHouseHoldMember",
        )
        assert dci_event_types(PERSON_REGISTERED, joined_household=True) == (
            "REGISTER",
            "NewHouseHoldMember",
        )
        assert dci_event_types(HOUSEHOLD_DECILE_CHANGED) == ("DECILE_CHANGE",)
        assert dci_event_types("registry.household.split.v1") == ("UPDATE",)
        assert dci_event_types("complaints.complaint.filed.v1") == ()
